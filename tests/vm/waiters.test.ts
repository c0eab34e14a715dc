import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import type { Family } from '../../harness/net/xfrm.js';
import { KernelSession } from '../../harness/suite/session.js';
import {
	describeWaiters, everySocketWritableAtOnce, everyWaiterFailed, everyWaiterFailedWithFullQueue, everyWaiterWokenByInstall, RESOLVE_QLEN, keyedPeerIndex, onlyTheKeyedWaiterWoken,
	runWaiters, type WaitersRun, type WaitersSpec,
} from '../../harness/suite/waiters.js';
import { progress } from '../../harness/util/progress.js';
import { repeatFor } from './repeat.js';

/**
 * Issue #5's scale rows: 1,000 sockets waiting on one acquire all wake on
 * its installation, and of 1,000 acquires with one socket each an
 * installation wakes exactly one.  Stock, for contrast, calls all 1,000
 * writable before any SA exists.
 */
const SOCKETS = 1000;
/** Every socket is connected and waiting well before this (set-up takes 0.1-0.6 s under TCG). */
const KM_DELAY_MS = 1500;

async function runChecked(session: KernelSession, spec: WaitersSpec, sysctls: Record<string, number>, check: (r: WaitersRun) => string[], repeat: number): Promise<void> {
	const failures: string[] = [];
	for (let i = 0; i < repeat; i++) {
		const r = await runWaiters(await session.lab('transport'), spec, sysctls);
		const v = check(r);
		progress(`${session.kernel.name} waiters v${spec.family} ${spec.peers} run ${i + 1}/${repeat}: ${describeWaiters(r)}`);
		if (v.length) failures.push(`run ${i + 1}: ${describeWaiters(r)}: ${v.join('; ')}\n${r.tapText}`);
	}
	const findings = session.newFindings();
	expect(findings.map((f) => f.text), 'console findings').toEqual([]);
	expect(failures).toEqual([]);
}

describe('1,000 waiters on patched (xfrm_resolve=1)', () => {
	const REPEAT = repeatFor('patched');
	let session: KernelSession;
	beforeAll(async () => {
		session = new KernelSession(await resolveKernel('patched'));
	});
	afterAll(async () => {
		await session?.close();
	});
	for (const family of [4, 6] as Family[]) {
		it(`IPv${family}: ${SOCKETS} sockets on one acquire all wake on its installation`, async () => {
			await runChecked(session, { family, sockets: SOCKETS, peers: 'one', kmDelayMs: KM_DELAY_MS }, { 'net.core.xfrm_resolve': 1 }, everyWaiterWokenByInstall, REPEAT);
		});
		it(`IPv${family}: of ${SOCKETS} acquires with one socket each, an installation wakes exactly one`, async () => {
			const spec: WaitersSpec = { family, sockets: SOCKETS, peers: 'each', kmDelayMs: KM_DELAY_MS };
			await runChecked(session, spec, { 'net.core.xfrm_resolve': 1 }, (r) => onlyTheKeyedWaiterWoken(r, keyedPeerIndex(spec)), REPEAT);
		});
	}
	it(`IPv4: the acquire ${SOCKETS} sockets wait on expires: every one is woken with EHOSTUNREACH in SO_ERROR`, async () => {
		await runChecked(session, { family: 4, sockets: SOCKETS, peers: 'one', kmDelayMs: 0, kmNever: true }, { 'net.core.xfrm_resolve': 1, 'net.core.xfrm_acq_expires': 1 }, everyWaiterFailed, REPEAT);
	});
	it(`IPv4: the acquire expires with its queue full under ${SOCKETS} waiters: the bound held, every held datagram dropped and counted, every waiter EHOSTUNREACH`, async () => {
		const fill = RESOLVE_QLEN + 50;
		await runChecked(session, { family: 4, sockets: SOCKETS, peers: 'one', kmDelayMs: 0, kmNever: true, fillQueue: fill }, { 'net.core.xfrm_resolve': 1, 'net.core.xfrm_acq_expires': 2 }, (r) => everyWaiterFailedWithFullQueue(r, fill), REPEAT);
	});
	it(`with xfrm_resolve=0 all ${SOCKETS} sockets are writable at once, as on stock`, async () => {
		await runChecked(session, { family: 4, sockets: SOCKETS, peers: 'one', kmDelayMs: KM_DELAY_MS }, {}, everySocketWritableAtOnce, 1);
	});
});

describe('1,000 waiters on stock', () => {
	let session: KernelSession;
	beforeAll(async () => {
		session = new KernelSession(await resolveKernel('stock'));
	});
	afterAll(async () => {
		await session?.close();
	});
	it(`poll() calls all ${SOCKETS} sockets writable before any SA exists`, async () => {
		await runChecked(session, { family: 4, sockets: SOCKETS, peers: 'one', kmDelayMs: KM_DELAY_MS }, {}, everySocketWritableAtOnce, repeatFor('stock'));
	});
});
