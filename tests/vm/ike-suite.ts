import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { IKE_DAEMON, type IkeDaemonName } from '../../harness/km/ike-daemon.js';
import { resolveKernel } from '../../harness/kernel/target.js';
import type { Case } from '../../harness/suite/cases.js';
import { cellsOf } from '../../harness/suite/plan.js';
import { KernelSession } from '../../harness/suite/session.js';
import { expectCellAsExpected } from './expect-cell.js';

/**
 * What tests/vm/strongswan.test.ts and tests/vm/libreswan.test.ts share:
 * an IKE daemon's cases on each kernel, one guest per kernel, and the
 * README's `larval exec --km DAEMON` ping.
 */

/** Each case on each of @kernels, in every mode cellsOf() gives (the series' too on patched) that @rowRuns admits, @repeat times. */
export function describeIkeCases(daemon: IkeDaemonName, cases: readonly Case[], kernels: readonly string[], repeat: number, rowRuns: (modeId: string) => boolean = () => true): void {
	describe.each(kernels)(`${IKE_DAEMON[daemon].label} on %s`, (kernelName) => {
		let session: KernelSession | undefined;
		const getSession = async () => (session ??= new KernelSession(await resolveKernel(kernelName), daemon));
		afterAll(async () => {
			await session?.close();
		});

		for (const c of cases) {
			for (const { mode, check } of cellsOf(c, { resolve: kernelName === 'patched' }).filter((x) => rowRuns(x.mode.id))) {
				it(`${c.id} [${mode.id}]: ${c.title}`, async () => {
					const s = await getSession();
					const cell = await s.runCell(c, mode, check, repeat);
					expectCellAsExpected(cell, `${kernelName} ${c.id} [${mode.id}]`, repeat);
				});
			}
		}
	});
}

/** `larval exec --kernel K --topology transport --km DAEMON --with ping --ns A -- ping -c 3 -W 1 PEER`, with LARVAL_QUIET. */
export function pingThroughDaemon(daemon: IkeDaemonName, kernel: string) {
	return execa('node', ['dist/harness/cli.js', 'exec', '--kernel', kernel, '--topology', 'transport', '--km', daemon, '--with', 'ping', '--ns', 'A', '--', 'ping', '-c', '3', '-W', '1', 'PEER'], { reject: false, timeout: 180_000, env: { LARVAL_QUIET: '1' } });
}

/** The logs `larval exec` kept, by namespace, from its "PROGRAM log (NS): PATH" lines. */
export function keptLogs(daemon: IkeDaemonName, stderr: string): Array<readonly [string, string]> {
	const re = new RegExp(`${IKE_DAEMON[daemon].program} log \\((A|B)\\): (\\S+)`, 'g');
	return [...stderr.matchAll(re)].map((m) => [m[1]!, readFileSync(m[2]!, 'utf8')] as const);
}

/** The README's example, on stock: the first echo request lost, the later ones answered, both logs kept and showing the CHILD_SA (@established). */
export function itLosesTheFirstPingOnStock(daemon: IkeDaemonName, established: RegExp): void {
	const { label, program } = IKE_DAEMON[daemon];
	it(`stock: the first echo request is lost, the later ones answered; both ${program}s' logs kept`, async () => {
		const r = await pingThroughDaemon(daemon, 'stock');
		expect(r.stdout, r.stderr).toMatch(/3 packets transmitted, 2 received/);
		expect(r.stdout, r.stderr).not.toMatch(/icmp_seq=1 /);
		expect(r.stderr).toContain(`${label}: ${program} in A and B`);
		const logs = keptLogs(daemon, r.stderr);
		expect(logs.map(([ns]) => ns), r.stderr).toEqual(['A', 'B']);
		for (const [, log] of logs) expect(log).toMatch(established);
	});
}

/** The same command on patched (exec sets xfrm_resolve=1 there): every echo request answered. */
export function itAnswersEveryPingOnPatched(daemon: IkeDaemonName): void {
	it('patched, the same command (exec sets xfrm_resolve=1 there): every echo request answered', async () => {
		const r = await pingThroughDaemon(daemon, 'patched');
		expect(r.stderr).toMatch(/net\.core\.xfrm_resolve=1/);
		expect(r.stdout, r.stderr).toMatch(/3 packets transmitted, 3 received/);
		expect(r.exitCode, r.stderr).toBe(0);
	});
}
