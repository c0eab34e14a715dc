import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { CASES, RESOLVE_1 } from '../../harness/suite/cases.js';
import { runNetKselftest } from '../../harness/suite/kselftest.js';
import { cellText, KernelSession } from '../../harness/suite/session.js';
import { everyWaiterFailed, everyWaiterWokenByInstall, keyedPeerIndex, onlyTheKeyedWaiterWoken, runWaiters, type WaitersRun, type WaitersSpec } from '../../harness/suite/waiters.js';
import { formatFindings } from '../../harness/vm/console-scan.js';
import { kmemleakAvailable, kmemleakClear, kmemleakScan } from '../../harness/vm/kmemleak.js';
import { progress } from '../../harness/util/progress.js';

/**
 * Issue #7, item 1: the series under KASAN, lockdep, DEBUG_ATOMIC_SLEEP,
 * DEBUG_OBJECTS, kmemleak and the lockup detectors (config/debug.config).
 * Every case's xfrm_resolve=1 row runs once, with the kselftest and the
 * many-waiter scenarios; a console finding (splat) fails the case that
 * caused it, with its report, and kmemleak is scanned at the end.  The
 * cases' timing bounds are made for the base kernel: here a mismatch of
 * the semantics is printed, only splats, errors and leaks fail.
 * `make test-debug`; not part of `make test` (the debug build alone takes
 * ~13 min cold).
 */
describe('the series on the debug kernel', () => {
	let session: KernelSession;
	beforeAll(async () => {
		session = new KernelSession(await resolveKernel('patched', { config: 'debug' }));
		const lab = await session.lab('transport');
		expect(await kmemleakAvailable(lab.vm), 'kmemleak in the debug kernel').toBe(true);
		// Its own scanning thread would compete with the cases for the one vCPU: scans are explicit, at the end.
		await lab.vm.run('echo scan=off > /sys/kernel/debug/kmemleak');
		await kmemleakClear(lab.vm);
	});
	afterAll(async () => {
		await session?.close();
	});

	it('runs a kernel with KASAN, lockdep and kmemleak', async () => {
		const lab = await session.lab('transport');
		const r = await lab.vm.exec('test -e /proc/lockdep && dmesg | grep -c "KernelAddressSanitizer initialized"', { timeoutMs: 10_000 });
		expect(r.code, r.stdout + r.stderr).toBe(0);
	});

	for (const c of CASES.filter((x) => x.resolved)) {
		it(`${c.id} [${RESOLVE_1.id}]: no splat`, async () => {
			const cell = await session.runCell(c, RESOLVE_1, c.resolved!, 1);
			const misses = cell.violations.flat();
			if (misses.length) progress(`debug ${c.id}: semantics differ under the debug kernel (not failed for it): ${misses.join('; ')}`);
			expect(cell.error ?? null, cellText(cell)).toBeNull();
			expect(cell.findings.length, formatFindings(cell.findings)).toBe(0);
		});
	}

	// 300 rather than 1,000: setting up 1,000 sockets (and acquires) takes the debug guest longer than any sane key manager delay.
	const N = 300;
	const EACH: WaitersSpec = { family: 6, sockets: N, peers: 'each', kmDelayMs: 15_000 };
	const waiters: Array<[string, WaitersSpec, Record<string, number>, (r: WaitersRun) => string[]]> = [
		[`${N} sockets on one acquire`, { family: 4, sockets: N, peers: 'one', kmDelayMs: 15_000 }, {}, everyWaiterWokenByInstall],
		[`${N} acquires, one socket each`, EACH, {}, (r) => onlyTheKeyedWaiterWoken(r, keyedPeerIndex(EACH))],
		[`${N} sockets on an acquire that expires`, { family: 4, sockets: N, peers: 'one', kmDelayMs: 0, kmNever: true, timeoutMs: 30_000 }, { 'net.core.xfrm_acq_expires': 10 }, everyWaiterFailed],
	];
	for (const [name, spec, sysctls, check] of waiters) {
		it(`${name}: as on the base kernel, no splat`, async () => {
			const r = await runWaiters(await session.lab('transport'), spec, { 'net.core.xfrm_resolve': 1, ...sysctls });
			expect(check(r), r.tapText).toEqual([]);
			const findings = session.newFindings();
			expect(findings.length, formatFindings(findings)).toBe(0);
		}, 10 * 60_000);
	}

	it("passes the series' kselftest, no splat", async () => {
		const lab = await session.lab('transport');
		const kernel = session.kernel;
		const r = await runNetKselftest(lab.vm, kernel.srcDir!, 'xfrm_resolve.sh', { helpers: ['xfrm_resolve_sock'], timeoutMs: 20 * 60_000 });
		expect(r.tap.points.filter((p) => !p.ok).map((p) => p.name), r.output).toEqual([]);
		const findings = session.newFindings();
		expect(findings.length, formatFindings(findings)).toBe(0);
	}, 25 * 60_000);

	it('leaks nothing kmemleak can see', async () => {
		const lab = await session.lab('transport');
		const leaks = await kmemleakScan(lab.vm);
		expect(leaks.map((l) => `${l.size} bytes from ${l.comm}: ${l.backtrace.slice(0, 6).join(' < ')}`)).toEqual([]);
	}, 5 * 60_000);
});
