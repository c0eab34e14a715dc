import { describe, expect, it } from 'vitest';
import { clip, compactCell, renderCompactTable, SUMMARY_WIDTH, summarize } from '../../harness/report/compact.js';
import type { Outcome } from '../../harness/suite/outcome.js';
import type { CellResult } from '../../harness/suite/session.js';

const outcome = (o: Partial<Outcome>): Outcome => ({
	sockopts: [], sends: [], sent: 3, received: 0, lost: 3, firstReplyMs: null, rttMs: [], acquires: 1, installs: 2, clearAtPeer: 0,
	nearCounters: {}, installAtMs: 51, kmLog: [], lostIds: [1, 2, 3], complete: true, problems: [], ...o,
});
const call = (ms: number, errno = '') => ({ ret: errno ? -1 : 0, errno, ms });

const cell = (over: Partial<CellResult>): CellResult => ({
	kernel: 'stock', release: '7.3.4', accel: 'tcg', cpus: 2, preempt: { model: 'full', dynamic: false },
	caseId: 'udp-datagrams-lost', mode: 'larval_drop=1', outcomes: [outcome({})], violations: [[]], findings: [], ms: 4321, ...over,
});

describe('the compact table', () => {
	it("says stock's losses and the series' first reply in a few words, with the median over the runs", () => {
		expect(summarize(cell({}))).toBe('lost 3/3');
		const replied = (first: number) => outcome({ received: 3, lost: 0, lostIds: [], firstReplyMs: first });
		expect(summarize(cell({ outcomes: [replied(70), replied(62), replied(66)], violations: [[], [], []] }))).toBe('first 66 ms, ×3');
	});
	it('shows a connect() only when it waited, an errno whatever it took', () => {
		expect(summarize(cell({ outcomes: [outcome({ connect: call(1) })] }))).toBe('lost 3/3');
		expect(summarize(cell({ outcomes: [outcome({ connect: call(1054), sent: 1, received: 1, lost: 0, firstReplyMs: 1070 })] }))).toBe('connect 1054 ms, first 1070 ms');
		expect(summarize(cell({ outcomes: [outcome({ connect: call(1001, 'EHOSTUNREACH'), sent: 0, lost: 0 })] }))).toBe('connect EHOSTUNREACH');
	});
	it("writes poll()'s answer as one word with its time: stock's POLLOUT at once, the series' after the SA", () => {
		const lie = outcome({ connect: call(0), pollConnect: { revents: 'POLLOUT', waitedMs: 0, soError: '' }, sent: 1, lost: 1 });
		expect(summarize(cell({ outcomes: [lie] }))).toBe('POLLOUT 0 ms, lost 1/1');
		const strict = outcome({ connect: call(1, 'EINPROGRESS'), pollConnect: { revents: 'POLLOUT', waitedMs: 52, soError: '' }, sent: 0, lost: 0 });
		expect(summarize(cell({ outcomes: [strict] }))).toBe('EINPROGRESS→POLLOUT 52 ms');
		const failed = outcome({ connect: call(1, 'EINPROGRESS'), pollConnect: { revents: 'POLLOUT|POLLERR', waitedMs: 1000, soError: 'EHOSTUNREACH' }, sent: 0, lost: 0 });
		expect(summarize(cell({ outcomes: [failed] }))).toBe('POLLERR EHOSTUNREACH 1000 ms');
	});
	it('says when runs differ instead of taking a median of unlike things', () => {
		const c = cell({ outcomes: [outcome({}), outcome({ received: 3, lost: 0, firstReplyMs: 60 })], violations: [[], ['3/3 echoed']] });
		expect(summarize(c)).toBe('runs differ: lost 3/3 / first');
		expect(compactCell(c)).toMatch(/^✗ /);
	});
	it('leaves whole words out rather than cutting one, and says so', () => {
		expect(clip(['EINPROGRESS→POLLOUT 1006 ms', 'first 1019 ms'])).toBe('EINPROGRESS→POLLOUT 1006 ms, …');
		expect(clip(['x'.repeat(40)])).toHaveLength(SUMMARY_WIDTH);
	});
	it('marks a cell that could not run, and keeps its reason for the lines above the table', () => {
		expect(compactCell(cell({ outcomes: [], violations: [], error: 'guest died during boot' }))).toBe('✗ ERROR (see above)');
	});
	it('fits 160 columns with three kernels and the longest case name, and spells out its abbreviations', () => {
		const kernels = ['distro-7.3', 'stock-7.3', 'patched-7.3'];
		const long = outcome({ connect: call(1, 'EINPROGRESS'), pollConnect: { revents: 'POLLOUT|POLLERR', waitedMs: 1000, soError: 'EHOSTUNREACH' }, sends: [call(0, 'EAGAIN')], sent: 1, lost: 1 });
		const cells = kernels.flatMap((kernel) => ['larval_drop=1', 'xfrm_resolve=1'].map((mode) => cell({ kernel, mode, caseId: 'fault-km-killed-during-tcp6-connect', outcomes: [long, long, long], violations: [[], [], []] })));
		const table = renderCompactTable(cells, kernels);
		for (const line of table.split('\n').slice(0, -1)) expect([...line].length).toBeLessThanOrEqual(160);
		expect(table).toContain('| fault-km-killed-during-tcp6-connect resolve |');
		expect(table.split('\n').at(-1)).toMatch(/^✓ as expected, ✗ not; drop = larval_drop=1, resolve = xfrm_resolve=1;/);
	});
	it("puts the main job's kernels side by side, a row per case, the legend saying each kernel's mode", () => {
		const replied = outcome({ received: 3, lost: 0, lostIds: [], firstReplyMs: 63 });
		const cells = [cell({ kernel: 'distro' }), cell({ kernel: 'patched', mode: 'xfrm_resolve=1', outcomes: [replied] })];
		const lines = renderCompactTable(cells, ['distro', 'patched'], { byCase: true }).split('\n');
		expect(lines[2]).toMatch(/^\| udp-datagrams-lost +\| ✓ lost 3\/3 +\| ✓ first 63 ms +\|$/);
		expect(lines.at(-1)).toBe('✓ as expected, ✗ not; distro in larval_drop=1, patched in xfrm_resolve=1; times are medians over the runs, every run is in --json');
	});
});
