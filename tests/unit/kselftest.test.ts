import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type KselftestResult, kselftestViolations } from '../../harness/suite/kselftest.js';
import { parseTap } from '../../harness/probe/tap.js';

/**
 * The series' kselftest (tools/testing/selftests/net/xfrm_resolve.sh), its
 * output recorded in real guests: on patched it runs everything; on
 * Debian's kernel, which has no net.core.xfrm_resolve, it skips all with
 * a plan of 0 and status 4 (KSFT_SKIP).  The other failures are edits of
 * the real patched output, one each.
 */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures', name), 'utf8');
const result = (output: string, status: number | null = 0): KselftestResult => ({ status, tap: parseTap(output), output });
const PATCHED = fixture('kselftest-xfrm-resolve-patched.txt');

describe('a kselftest run', () => {
	it('passes when every planned test ran and passed', () => {
		const r = result(PATCHED);
		expect(r.tap.planned).toBeGreaterThanOrEqual(20);
		expect(kselftestViolations(r)).toEqual([]);
	});

	it('fails on a plan of 0, the skip-all of a kernel without the series', () => {
		expect(kselftestViolations(result(fixture('kselftest-xfrm-resolve-distro.txt'), 4))).toEqual([
			'a plan of 0: it ran nothing (SKIP net.core.xfrm_resolve not supported)',
			'exited with status 4',
		]);
	});

	it('fails on a SKIP it was not told to expect, and not on one it was', () => {
		const first = /^ok 1 (.*)$/m.exec(PATCHED)![1]!;
		const skipped = PATCHED.replace(/^ok 1 (.*)$/m, 'ok 1 $1 # SKIP');
		expect(kselftestViolations(result(skipped))).toEqual([`skipped: 1 ${first}`]);
		expect(kselftestViolations(result(skipped), [first])).toEqual([]);
	});

	it('fails on an early death and on a missing plan', () => {
		const lines = PATCHED.split('\n');
		const third = lines.findIndex((l) => /^ok 3 /.test(l));
		const died = lines.slice(0, third + 1).join('\n');
		const planned = result(PATCHED).tap.planned!;
		expect(kselftestViolations(result(died, null))).toEqual([`3 of ${planned} planned results: it died early`, 'exited with status none (killed)']);
		expect(kselftestViolations(result(PATCHED.replace(/^1\.\.\d+$/m, '')))).toEqual(['no KTAP plan: the test died before it said how many tests it runs']);
	});

	it('fails on a not ok, with its name', () => {
		const second = /^ok 2 (.*)$/m.exec(PATCHED)![1]!;
		expect(kselftestViolations(result(PATCHED.replace(/^ok 2 /m, 'not ok 2 '), 1))).toEqual([`not ok 2 ${second}`, 'exited with status 1']);
	});
});
