import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTap } from '../../harness/probe/tap.js';
import {
	everySocketWritableAtOnce, everyWaiterFailed, everyWaiterFailedWithFullQueue, everyWaiterWokenByInstall, keyedPeerIndex, msAfterInstall, nthPeer,
	onlyTheKeyedWaiterWoken, RESOLVE_QLEN, waitersArgs, waitersRunOf,
} from '../../harness/suite/waiters.js';

const fixture = (name: string) => readFileSync(join(__dirname, '../fixtures', name), 'utf8');
const runOf = (name: string, sockets: number, status = 0) => {
	const tap = fixture(`${name}.tap`);
	return waitersRunOf(tap, parseTap(tap), status, '', fixture(`${name}.km.txt`), 'XfrmOutLarvalWait 0\n', sockets);
};

describe('the waiters scenario', () => {
	it('numbers peers from the wide prefix as larval-waiters does (first peer + i, low bits)', () => {
		expect(nthPeer(4, 0)).toBe('10.99.0.1');
		expect(nthPeer(4, 999)).toBe('10.99.3.232');
		expect(nthPeer(4, 255)).toBe('10.99.1.0');
		expect(nthPeer(6, 0)).toBe('2001:db8:99:0:0:0:0:1');
		expect(nthPeer(6, 19999)).toBe('2001:db8:99:0:0:0:0:4e20');
		expect(() => nthPeer(4, -1)).toThrow(/out of range/);
		expect(() => nthPeer(6, 20000)).toThrow(/out of range/);
	});

	it('keys the first peer of a shared acquire, the last of many', () => {
		expect(keyedPeerIndex({ family: 4, sockets: 1000, peers: 'one', kmDelayMs: 1 })).toBe(0);
		expect(keyedPeerIndex({ family: 4, sockets: 1000, peers: 'each', kmDelayMs: 1 })).toBe(999);
	});

	it('asks for one wake per peer only when every socket has a peer of its own', () => {
		expect(waitersArgs({ family: 6, sockets: 1000, peers: 'one', kmDelayMs: 1500 })).toEqual([
			'larval-waiters', '--family', '6', '--peer', '2001:db8:99:0:0:0:0:1', '--port', '7000', '--count', '1000',
			'--timeout-ms', '6500', '--settle-ms', '300',
		]);
		expect(waitersArgs({ family: 4, sockets: 10, peers: 'each', kmDelayMs: 100, settleMs: 50 })).toContain('--distinct');
		expect(() => waitersArgs({ family: 4, sockets: 0, peers: 'one', kmDelayMs: 1 })).toThrow(/sockets/);
	});

	it('reads a patched run: three acquires, the keyed socket alone woken after the NEWSA', () => {
		const r = runOf('waiters-patched-each', 3);
		expect([r.acquires, r.installs, r.writableAtOnce, r.woken, r.wokenIndex, r.sendErrors]).toEqual([3, 1, 0, 1, [2], 0]);
		expect(r.installNs).toBe(7303457779n);
		expect(msAfterInstall(r, r.firstWakeNs)).toBeCloseTo(2.819, 2);
		expect(onlyTheKeyedWaiterWoken(r, 2)).toEqual([]);
		expect(onlyTheKeyedWaiterWoken(r, 0).join()).toMatch(/expected exactly socket 0/);
		expect(everyWaiterWokenByInstall(r).join()).toMatch(/1\/3 sockets woken.*3 ACQUIREs, expected 1/);
		expect(everySocketWritableAtOnce(r).join()).toMatch(/0\/3 sockets writable/);
	});

	it('reads stock poll(): every socket writable at once, one acquire, no SA before the probe ended', () => {
		const r = runOf('waiters-resolve0-one', 3);
		expect(everySocketWritableAtOnce(r)).toEqual([]);
		const v = everyWaiterWokenByInstall(r).join('; ');
		expect(v).toMatch(/3\/3 sockets writable before any SA/);
		expect(v).toMatch(/installed no SA/);
	});

	it('reads an acquire that expired under its waiters: all woken with EHOSTUNREACH, no SA', () => {
		const r = runOf('waiters-patched-expire', 3);
		expect([r.woken, r.soErrors, r.firstSoError, r.installs]).toEqual([3, 3, 'EHOSTUNREACH', 0]);
		expect(everyWaiterFailed(r)).toEqual([]);
		expect(everyWaiterFailed(runOf('waiters-patched-each', 3)).join()).toMatch(/1\/3 sockets woken.*0\/3 woken with SO_ERROR/);
		expect(everyWaiterWokenByInstall(r).join()).toMatch(/installed no SA/);
	});

	it('checks a full queue at the failure: the bound held, the excess overflowed, the held dropped and counted', () => {
		const expired = (stat: string) => {
			const tap = fixture('waiters-patched-expire.tap');
			return waitersRunOf(tap, parseTap(tap), 0, '', fixture('waiters-patched-expire.km.txt'), stat, 3, 'XfrmOutLarvalHeld 7\nXfrmOutLarvalFailed 7\n');
		};
		const full = expired('XfrmOutLarvalHeld 107\nXfrmOutLarvalOverflow 50\nXfrmOutLarvalFailed 107\n');
		expect(full.xfrmStat).toMatchObject({ XfrmOutLarvalHeld: 100, XfrmOutLarvalOverflow: 50, XfrmOutLarvalFailed: 100 });
		expect(everyWaiterFailedWithFullQueue(full, RESOLVE_QLEN + 50)).toEqual([]);
		const unbounded = expired('XfrmOutLarvalHeld 157\nXfrmOutLarvalFailed 157\n');
		expect(everyWaiterFailedWithFullQueue(unbounded, RESOLVE_QLEN + 50).join('; ')).toMatch(/150 datagrams held, expected 100.*0 counted as overflow, expected 50/);
		const kept = expired('XfrmOutLarvalHeld 107\nXfrmOutLarvalOverflow 50\nXfrmOutLarvalFailed 7\n');
		expect(everyWaiterFailedWithFullQueue(kept, RESOLVE_QLEN + 50).join()).toMatch(/0 held packets dropped and counted at the failure, expected 100/);
	});

	it('reports a probe that died as a problem of every check', () => {
		const tap = fixture('waiters-patched-each.tap').split('\n').slice(0, 12).join('\n');
		const r = waitersRunOf(tap, parseTap(tap), 139, 'Segmentation fault', '', '', 3);
		expect(r.problems.join()).toMatch(/TAP incomplete.*exited 139: Segmentation fault/);
		expect(onlyTheKeyedWaiterWoken(r, 2)[0]).toMatch(/incomplete/);
		expect(everySocketWritableAtOnce(r)[0]).toMatch(/incomplete/);
	});
});
