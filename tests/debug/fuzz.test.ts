import { describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { kindsBelow } from '../../harness/suite/fuzz-plan.js';
import { renderFuzzCounts, runFuzz } from '../../harness/suite/fuzz.js';
import { progress } from '../../harness/util/progress.js';

/**
 * Issue #7, item 3, under KASAN, lockdep and kmemleak: larval-fuzz for
 * 3 minutes on the debug kernel, then a kmemleak scan.  A splat, a hang or
 * a leak fails it with the seed and the command that reruns it.  About
 * 5 minutes under TCG (boot ~35 s, the scan ~1 min).
 */
const SEED = 1;
const MINUTES = 3;
/** The debug guest does about a quarter of what the base one does in the same time. */
const FLOORS: Record<string, number> = {
	policy_add: 20, policy_del: 10, state_add: 15, state_del: 5, sysctl: 10,
	socket: 40, connect: 40, send: 40, sendto: 20, poll: 20, close: 20, netns: 5,
	acquire: 10, acq_newsa: 1, acq_updsa: 1, acq_delete: 1,
};

describe('fuzzing the debug kernel', () => {
	it(`seed ${SEED}, ${MINUTES} min: no splat, no hang, no leak`, async () => {
		const r = await runFuzz(await resolveKernel('patched', { config: 'debug' }), { seed: SEED, minutes: MINUTES, kmemleak: true });
		progress(`fuzz debug seed ${SEED}: boot ${(r.bootMs / 1000).toFixed(1)} s, fuzzing ${(r.fuzzMs / 1000).toFixed(1)} s, ${r.summary?.ops ?? 0} operations, ${r.leaks?.length ?? '?'} leak(s)`);
		expect(r.problems, r.tapText).toEqual([]);
		expect(r.leaks).toEqual([]);
		expect(r.summary, r.tapText).not.toBeNull();
		expect(kindsBelow(r.summary!, FLOORS), renderFuzzCounts(r.summary!)).toEqual([]);
	}, 15 * 60_000);
});
