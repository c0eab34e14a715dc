import { describe, expect, it } from 'vitest';
import { findCase } from '../../harness/suite/cases.js';
import { MAIN_CASE_IDS, mainCases, mainCellsOf, progressText } from '../../harness/suite/plan.js';

describe("the main job's plan", () => {
	it('names cases that exist, each once', () => {
		expect(mainCases().map((c) => c.id)).toEqual([...MAIN_CASE_IDS]);
		expect(new Set(MAIN_CASE_IDS).size).toBe(MAIN_CASE_IDS.length);
	});
	it("runs the series' mode where the kernel has it, stock's default where not", () => {
		for (const c of mainCases()) {
			expect(mainCellsOf(c, false).map((x) => x.mode.id)).toEqual(['larval_drop=1']);
			expect(mainCellsOf(c, true).map((x) => x.mode.id)).toEqual([c.resolved ? 'xfrm_resolve=1' : 'larval_drop=1']);
		}
	});
	it('covers both families of the connect and datagram rows', () => {
		for (const id of ['tcp6-connect-blackhole', 'udp6-datagrams-lost']) expect(findCase(id)).toBeDefined();
		expect(MAIN_CASE_IDS).toEqual(expect.arrayContaining(['tcp-connect-blackhole', 'tcp6-connect-blackhole', 'udp-datagrams-lost', 'udp6-datagrams-lost']));
	});
});

describe('progress lines', () => {
	it('say which cell of how many and the time left', () => {
		expect(progressText({ done: 3, total: 26, leftMs: 42_400 })).toBe('[3/26, about 42 s left] ');
		expect(progressText({ done: 30, total: 327, leftMs: 25 * 60_000 })).toBe('[30/327, about 25.0 min left] ');
		expect(progressText({ done: 26, total: 26, leftMs: 0 })).toBe('[26/26, done] ');
	});
});
