import { afterAll, describe, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { cellsOf } from '../../harness/suite/plan.js';
import { KernelSession } from '../../harness/suite/session.js';
import { STRONGSWAN_CASES } from '../../harness/suite/strongswan-cases.js';
import { expectCellAsExpected } from './expect-cell.js';

/**
 * strongSwan as the key manager (issue 6): a charon on each side, IKEv2 with
 * a PSK, trap policies.  Debian's kernel and stock lose (or retransmit) what
 * meets the missing SA; the patched kernel with xfrm_resolve=1 holds it and
 * answers within the negotiation time charon reports, and with
 * xfrm_resolve=0 behaves as stock.  A charon that does not start or does not
 * negotiate fails the case with its log's tail.
 */
const REPEAT = Number(process.env.LARVAL_REPEAT ?? 3);

describe.each(['distro', 'stock', 'patched'])('strongSwan on %s', (kernelName) => {
	let session: KernelSession | undefined;
	const getSession = async () => (session ??= new KernelSession(await resolveKernel(kernelName), 'strongswan'));
	afterAll(async () => {
		await session?.close();
	});

	for (const c of STRONGSWAN_CASES) {
		for (const { mode, check } of cellsOf(c, { resolve: kernelName === 'patched' })) {
			it(`${c.id} [${mode.id}]: ${c.title}`, async () => {
				const s = await getSession();
				const cell = await s.runCell(c, mode, check, REPEAT);
				expectCellAsExpected(cell, `${kernelName} ${c.id} [${mode.id}]`, REPEAT);
			});
		}
	}
});
