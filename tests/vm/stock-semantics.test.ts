import { afterAll, describe, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { CASES } from '../../harness/suite/cases.js';
import { cellsOf } from '../../harness/suite/plan.js';
import { KernelSession } from '../../harness/suite/session.js';
import { expectCellAsExpected } from './expect-cell.js';
import { firewallRowRepeat, repeatFor, tierOf } from './repeat.js';

/**
 * The bug reproductions: every case of the matrix on Debian's own kernel and
 * on stock 6.12 built here, asserting what stock Linux does today
 * (sa-resolution.md section 1).  Stock varies from run to run in places, so
 * each case runs REPEAT times and every run must be one of the behaviours
 * stock is known to show.  Debian's kernel, a cross-check of the stock one
 * built from the same source, runs in the full tier only.
 */
describe.each(tierOf() === 'full' ? (['distro', 'stock'] as const) : (['stock'] as const))('stock semantics on %s', (kernelName) => {
	const REPEAT = repeatFor(kernelName);
	let session: KernelSession | undefined;
	const getSession = async () => (session ??= new KernelSession(await resolveKernel(kernelName)));
	afterAll(async () => {
		await session?.close();
	});

	for (const c of CASES) {
		for (const { mode, check } of cellsOf(c)) {
			const repeat = firewallRowRepeat(c, mode.id, kernelName, REPEAT);
			if (!repeat) continue;
			it(`${c.id} [${mode.id}]: ${c.title}`, async () => {
				const s = await getSession();
				const cell = await s.runCell(c, mode, check, repeat);
				expectCellAsExpected(cell, `${kernelName} ${c.id} [${mode.id}]`, repeat);
			});
		}
	}
});
