import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { DEVICE_TEARDOWN_EXPIRES_S, describeDeviceTeardown, deviceTeardownViolations, runDeviceTeardown } from '../../harness/suite/device-teardown.js';
import { describeTeardown, runNetnsTeardown, teardownViolations, type TeardownSpec } from '../../harness/suite/netns-teardown.js';
import { KernelSession } from '../../harness/suite/session.js';
import { formatFindings } from '../../harness/vm/console-scan.js';
import { progress } from '../../harness/util/progress.js';
import { repeatFor } from './repeat.js';

/**
 * Issue #7's fault "namespace deleted with sockets sleeping in connect()"
 * (harness/suite/netns-teardown.ts): the sleepers outlive the name, SIGKILL
 * ends any of them, the others fail at the acquire's expiry, the namespace
 * goes after the last of them; and one that holds only the kernel's own
 * packets goes at once.  Nothing on the console.  Then issue #14's finding
 * 4 (harness/suite/device-teardown.ts): a device deleted under packets
 * held from it, forwarded or sent through an xfrm interface moved to
 * another namespace; the series up to 0011 oopsed in icmp6_send() at the
 * expiry on the latter (tests/fixtures/console-device-teardown-*).
 */
describe('a namespace deleted under sockets waiting for an SA, patched (xfrm_resolve=1)', () => {
	const REPEAT = repeatFor('patched');
	const SPEC: TeardownSpec = { acqExpiresS: 2 };
	let session: KernelSession;
	beforeAll(async () => {
		session = new KernelSession(await resolveKernel('patched'));
	});
	afterAll(async () => {
		await session?.close();
	});

	it('sleepers outlive the name, die on SIGKILL, fail at the expiry; the namespace goes after them', async () => {
		const failures: string[] = [];
		for (let i = 0; i < REPEAT; i++) {
			const lab = await session.lab('transport');
			const r = await runNetnsTeardown(lab.vm, SPEC);
			progress(`patched netns teardown run ${i + 1}/${REPEAT}: ${describeTeardown(r)}`);
			const v = teardownViolations(r, SPEC);
			if (v.length) failures.push(`run ${i + 1}: ${describeTeardown(r)}: ${v.join('; ')}`);
		}
		const findings = session.newFindings();
		expect(findings.length, formatFindings(findings)).toBe(0);
		expect(failures).toEqual([]);
	}, 5 * 60_000);

	for (const variant of ['forwarded', 'xfrmi-elsewhere'] as const) {
		it(`${variant}: packets held from a deleted device go with it, at once; nothing at the expiry`, async () => {
			const r = await runDeviceTeardown(await session.vm(), { variant, acqExpiresS: DEVICE_TEARDOWN_EXPIRES_S });
			progress(`patched device teardown (${variant}): ${describeDeviceTeardown(r)}`);
			expect(deviceTeardownViolations(r)).toEqual([]);
			const findings = session.newFindings();
			expect(findings.length, formatFindings(findings)).toBe(0);
		}, 2 * 60_000);
	}
});
