import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kernelSocketsScript, kernelSocketsViolations, parseKernelSockets } from '../../harness/suite/kernel-sockets.js';

/**
 * What the kernel sockets scenario printed in real guests
 * (tests/fixtures/record-scenario.ts): stock, the series as it stands, and
 * the series up to 0012, whose blocking datagram connect() made the L2TP
 * tunnel's set-up sleep until the acquire expired.
 */
const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

describe('the kernel sockets scenario', () => {
	it('passes stock and the series: the set-up returns at once, and the policy sent an ACQUIRE per family', () => {
		for (const name of ['kernel-sockets-stock.txt', 'kernel-sockets-patched.txt']) {
			const r = parseKernelSockets(fixture(name));
			expect(r.tunnels.map((t) => t.status), name).toEqual([0, 0]);
			expect(r.acquires, name).toBeGreaterThanOrEqual(2);
			expect(kernelSocketsViolations(r), name).toEqual([]);
		}
		expect(parseKernelSockets(fixture('kernel-sockets-patched.txt')).resolve).toBe(true);
		expect(parseKernelSockets(fixture('kernel-sockets-stock.txt')).resolve).toBe(false);
	});

	it('fails the series up to 0012: asleep until the acquire expired, then EHOSTUNREACH', () => {
		const v = kernelSocketsViolations(parseKernelSockets(fixture('kernel-sockets-patched-0001-0012.txt'))).join('\n');
		expect(v).toMatch(/ip l2tp add tunnel over IPv4 took [3-9]\.\d+ s/);
		expect(v).toMatch(/ip l2tp add tunnel over IPv4 exited [1-9]/);
	});

	it('calls a run that met no policy a run that shows nothing', () => {
		const none = fixture('kernel-sockets-stock.txt').replace(/=== acquires\n\d+/, '=== acquires\n0');
		expect(kernelSocketsViolations(parseKernelSockets(none)).join('\n')).toMatch(/heard 0 ACQUIRE\(s\)/);
	});

	it('bounds every command it runs', () => {
		expect(kernelSocketsScript({ acqExpiresS: 3 })).toMatch(/timeout 13 \/usr\/bin\/ip -n lks-near l2tp add tunnel/);
	});
});
