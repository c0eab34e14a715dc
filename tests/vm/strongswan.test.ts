import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { cellsOf } from '../../harness/suite/plan.js';
import { KernelSession } from '../../harness/suite/session.js';
import { STRONGSWAN_CASES } from '../../harness/suite/strongswan-cases.js';
import { expectCellAsExpected } from './expect-cell.js';
import { repeatFor, tierOf } from './repeat.js';

/**
 * strongSwan as the key manager (issue 6): a charon on each side, IKEv2 with
 * a PSK, trap policies.  Debian's kernel and stock lose (or retransmit) what
 * meets the missing SA; the patched kernel with xfrm_resolve=1 holds it and
 * answers within the negotiation time charon reports, and with
 * xfrm_resolve=0 behaves as stock.  A charon that does not start or does not
 * negotiate fails the case with its log's tail.  The ci tier runs the cases
 * on patched (with the switch off they assert stock's behaviour) and the
 * README's example on stock and patched; the full tier all three kernels.
 */
const REPEAT = repeatFor('strongswan');

describe.each(tierOf() === 'full' ? ['distro', 'stock', 'patched'] : ['patched'])('strongSwan on %s', (kernelName) => {
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

// The README's example: a host ping from A to the peer by name, the first
// request meeting the trap policy.  Stock drops it; the series holds it, or
// (0009) holds ping's connect() until the SA exists.
describe('larval exec --km strongswan', () => {
	const cli = (args: string[]) => execa('node', ['dist/harness/cli.js', ...args], { reject: false, timeout: 180_000, env: { LARVAL_QUIET: '1' } });
	const keptLogs = (stderr: string) => [...stderr.matchAll(/charon log \((A|B)\): (\S+)/g)].map((m) => [m[1], readFileSync(m[2]!, 'utf8')] as const);

	it('stock: the first echo request is lost, the later ones answered; both charons\' logs kept', async () => {
		const r = await cli(['exec', '--kernel', 'stock', '--topology', 'transport', '--km', 'strongswan', '--with', 'ping', '--ns', 'A', '--', 'ping', '-c', '3', '-W', '1', 'PEER']);
		expect(r.stdout, r.stderr).toMatch(/3 packets transmitted, 2 received/);
		expect(r.stdout, r.stderr).not.toMatch(/icmp_seq=1 /);
		expect(r.stderr).toMatch(/strongSwan: charon in A and B/);
		const logs = keptLogs(r.stderr);
		expect(logs.map(([ns]) => ns)).toEqual(['A', 'B']);
		for (const [, log] of logs) expect(log).toMatch(/CHILD_SA v4\{\d+\} established/);
	});

	it('patched, the same command (exec sets xfrm_resolve=1 there): every echo request answered', async () => {
		const r = await cli(['exec', '--kernel', 'patched', '--topology', 'transport', '--km', 'strongswan', '--with', 'ping', '--ns', 'A', '--', 'ping', '-c', '3', '-W', '1', 'PEER']);
		expect(r.stderr).toMatch(/net\.core\.xfrm_resolve=1/);
		expect(r.stdout, r.stderr).toMatch(/3 packets transmitted, 3 received/);
		expect(r.exitCode, r.stderr).toBe(0);
	});
});
