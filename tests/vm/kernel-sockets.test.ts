import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { describeKernelSockets, kernelSocketsViolations, type KernelSocketsSpec, runKernelSockets } from '../../harness/suite/kernel-sockets.js';
import { KernelSession } from '../../harness/suite/session.js';
import { formatFindings } from '../../harness/vm/console-scan.js';
import { progress } from '../../harness/util/progress.js';

/**
 * Issue #15: a kernel socket never sleeps on an acquire
 * (harness/suite/kernel-sockets.ts).  `ip l2tp add tunnel` over UDP to a
 * peer behind a trap policy, a key manager that never answers: at once on
 * stock, and at once on the series with xfrm_resolve=1 (the series up to
 * 0012 slept until the acquire expired, 3 s here, then failed).
 */
describe.each(['stock', 'patched'] as const)('a kernel socket behind a trap policy, %s', (kernelName) => {
	const SPEC: KernelSocketsSpec = { acqExpiresS: 3 };
	let session: KernelSession;
	beforeAll(async () => {
		session = new KernelSession(await resolveKernel(kernelName));
	});
	afterAll(async () => {
		await session?.close();
	});

	it('ip l2tp add tunnel (the kernel connects its UDP socket, genl_mutex held) returns at once, and an ACQUIRE was sent', async () => {
		const r = await runKernelSockets(await session.vm(), SPEC);
		progress(`${kernelName} kernel sockets: ${describeKernelSockets(r)}`);
		// The series' claim is about xfrm_resolve=1: a patched guest without the switch would prove nothing.
		expect(r.resolve, 'net.core.xfrm_resolve').toBe(kernelName === 'patched');
		expect(kernelSocketsViolations(r)).toEqual([]);
		const findings = session.newFindings();
		expect(findings.length, formatFindings(findings)).toBe(0);
	}, 3 * 60_000);
});
