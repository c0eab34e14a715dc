import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { CASES, RESOLVE_1 } from '../../harness/suite/cases.js';
import { cellsOf } from '../../harness/suite/plan.js';
import { KernelSession } from '../../harness/suite/session.js';
import { expectCellAsExpected } from './expect-cell.js';
import { kselftestViolations, runNetKselftest } from '../../harness/suite/kselftest.js';
import { bootGuest } from '../../harness/vm/guest.js';
import { firewallRowRepeat, patchedCompatRowRuns, repeatFor } from './repeat.js';

/**
 * The patched kernel: with net.core.xfrm_resolve=0 every stock expectation
 * must still hold (the series is safe to merge), and with xfrm_resolve=1
 * nothing is lost and held packets leave when the SA is installed.
 */
const REPEAT = repeatFor('patched');
/** The compatibility rows assert stock's expectations, as often as the stock kernel runs them. */
const COMPAT_REPEAT = repeatFor('stock');

describe('semantics on patched', () => {
	let session: KernelSession;
	beforeAll(async () => {
		session = new KernelSession(await resolveKernel('patched'));
	});
	afterAll(async () => {
		await session?.close();
	});

	it('has the series switch net.core.xfrm_resolve', async () => {
		expect(await session.hasResolve()).toBe(true);
	});

	it("passes the series' own kselftest (net/xfrm_resolve.sh, KTAP)", async () => {
		const kernel = await resolveKernel('patched');
		const guest = await bootGuest(kernel);
		try {
			const r = await runNetKselftest(guest.vm, kernel.srcDir!, 'xfrm_resolve.sh', { helpers: ['xfrm_resolve_sock'] });
			// A `not ok`, a SKIP, a plan of 0, no plan, an early death or a non-zero status.
			expect(kselftestViolations(r), r.output).toEqual([]);
			expect(r.tap.points.length, r.output).toBeGreaterThanOrEqual(40);
		} finally {
			await guest.vm.stop();
		}
	}, 10 * 60_000);

	for (const c of CASES) {
		for (const { mode, check } of cellsOf(c, { resolve: true })) {
			const repeat = firewallRowRepeat(c, mode.id, 'patched', mode.id === RESOLVE_1.id ? REPEAT : COMPAT_REPEAT);
			if (!repeat || (mode.id !== RESOLVE_1.id && !patchedCompatRowRuns(mode.id))) continue;
			it(`${c.id} [${mode.id}]`, async () => {
				const cell = await session.runCell(c, mode, check, repeat);
				expectCellAsExpected(cell, `patched ${c.id} [${mode.id}]`, repeat);
			});
		}
	}
});
