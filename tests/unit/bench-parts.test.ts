import { describe, expect, it } from 'vitest';
import { summarizeBoots } from '../../harness/suite/bench-boot.js';
import { bestBlast, type FastPathSample, type PpsRun, ppsRunOf, summarizeFastPath } from '../../harness/suite/bench-fastpath.js';
import { memoryRowOf, memoryRunOf, parseMeminfo } from '../../harness/suite/bench-memory.js';
import { benchFigures } from '../../harness/report/bench-figures.js';

const TCG_2_FULL = { accel: 'tcg', cpus: 2, preempt: { model: 'full', dynamic: false } } as const;

const sendTap = (sent: number, startNs: number, endNs: number) =>
	`TAP version 14\nok 1 - send\n  ---\n  sent: ${sent}\n  errors: 0\n  first_errno: "0"\n  start_ns: ${startNs}\n  end_ns: ${endNs}\n  ...\n1..1\n`;
const recvTap = (received: number) => `TAP version 14\n# READY\nok 1 - receive\n  ---\n  received: ${received}\n  stopped_by_signal: true\n  ...\n1..1\n`;

const pps = (receivedPps: number, sentPps = receivedPps, problems: string[] = []): PpsRun => ({ sent: 0, received: 0, sendErrors: 0, firstErrno: '0', durationMs: 2500, sentPps, receivedPps, problems });
const sample = (kernel: string, round: number, p: PpsRun): FastPathSample => ({ kernel, mode: kernel === 'stock' ? 'default' : 'xfrm_resolve=1', round, pps: p });

describe('the fast-path figures', () => {
	it('takes rates from the sender\'s own time', () => {
		const r = ppsRunOf(new Map([['send-1', sendTap(5000, 1e9, 3.5e9)], ['recv-1', recvTap(4000)]]), 1);
		expect(r.durationMs).toBe(2500);
		expect(r.sentPps).toBe(2000);
		expect(r.receivedPps).toBe(1600);
		expect(r.problems).toEqual([]);
	});

	it('says when nothing arrived or a side said nothing', () => {
		expect(ppsRunOf(new Map([['send-0', sendTap(5000, 1e9, 3.5e9)], ['recv-0', recvTap(0)]])).problems).toEqual(['none of 5000 datagrams arrived']);
		expect(ppsRunOf(new Map()).problems).toEqual(expect.arrayContaining([expect.stringMatching(/sender TAP incomplete/), expect.stringMatching(/receiver TAP incomplete/)]));
	});

	it('keeps a boot\'s fastest blast that did not fail', () => {
		expect(bestBlast([pps(900), pps(1100), pps(5000, 5000, ['none arrived'])]).receivedPps).toBe(1100);
		expect(bestBlast([pps(1, 1, ['a']), pps(2, 2, ['b'])]).problems).toEqual(['a']);
	});

	it('pairs the kernels round by round for the ratio, and skips failed runs', () => {
		const rows = summarizeFastPath([
			sample('stock', 1, pps(1000)), sample('patched', 1, pps(990, 1000)),
			sample('stock', 2, pps(2000)), sample('patched', 2, pps(2100, 1900)),
			sample('stock', 3, pps(1500)), sample('patched', 3, pps(1, 1, ['none arrived'])),
		], 'stock');
		const [stock, patched] = rows;
		expect(stock!.ratio).toBeNull();
		expect(stock!.receivedPps).toBe(1500);
		expect(patched!.runs).toBe(3);
		expect(patched!.receivedPps).toBe(1545);
		expect(patched!.ratio).toBeCloseTo((0.99 + 1.05) / 2);
		expect(patched!.ratioMin).toBeCloseTo(0.99);
		expect(patched!.ratioMax).toBeCloseTo(1.05);
		expect(patched!.sentRatio).toBeCloseTo((1 + 0.95) / 2);
		expect(patched!.problems).toEqual(['round 3: none arrived']);
		expect(patched!.switchRatio).toBeNull();
		expect(stock!.switchRatio).toBeNull();
		expect(benchFigures({ fastPath: { baseline: 'stock', payload: 64, durationMs: 2500, blastsPerBoot: 2, rows, samples: [] } }).filter((x) => x.gate).map((x) => x.id))
			.toEqual(['received pps patched [xfrm_resolve=1] / stock']);
	});

	it('sets the switch on against off within each boot', () => {
		const on = (round: number, p: number, off: number): FastPathSample => ({ ...sample('patched', round, pps(p)), switchedOff: pps(off) });
		const [patched] = summarizeFastPath([on(1, 990, 1000), on(2, 1800, 2000), on(3, 1000, 1000)], 'stock');
		expect(patched!.switchRatio).toBeCloseTo(0.99);
		expect(benchFigures({ fastPath: { baseline: 'stock', payload: 64, durationMs: 2000, blastsPerBoot: 2, rows: [patched!], samples: [] } }).map((x) => [x.id, x.gate]))
			.toContainEqual(['received pps patched [xfrm_resolve=1] / xfrm_resolve=0, same boot', false]);
	});
});

describe('the boot figures', () => {
	it('takes the median per kernel and checks the 2 s target', () => {
		const b = (firstCommandMs: number) => ({ guestReadyMs: firstCommandMs - 300, sshMs: firstCommandMs - 100, firstCommandMs });
		const rows = summarizeBoots([{ kernel: 'stock', boot: b(1900) }, { kernel: 'patched', boot: b(2500) }, { kernel: 'stock', boot: b(2100) }, { kernel: 'stock', boot: b(NaN) }]);
		expect(rows.map((r) => [r.kernel, r.boots, r.firstCommandMs, r.withinTarget])).toEqual([['stock', 3, 2000, true], ['patched', 1, 2500, false]]);
		expect(rows[0]!.firstCommandMinMs).toBe(1900);
		expect(rows[0]!.firstCommandMaxMs).toBe(2100);
	});
});

describe('the memory figures', () => {
	const meminfo = (free: number, slab: number, unreclaim: number, shmem: number) =>
		`MemTotal:         500000 kB\nMemFree:          ${free} kB\nShmem:            ${shmem} kB\nSlab:             ${slab} kB\nSUnreclaim:       ${unreclaim} kB\nHugePages_Total:       0\n`;
	const holdTap = (sent: number) => `TAP version 14\nok 1 - send\n  ---\n  sent: ${sent}\n  errors: 0\n  first_errno: "0"\n  ...\n1..1\n`;
	const sections = (acquires: number, held: number, slabGrowthKiB: number) =>
		new Map([
			['hold', holdTap(acquires)], ['hold-status', '0'], ['acquires', String(acquires)],
			['meminfo-before', meminfo(400000, 10000, 6000, 100)], ['meminfo-after', meminfo(400000 - slabGrowthKiB - 50, 10000 + slabGrowthKiB, 6000 + slabGrowthKiB, 150)],
			['stat-before', 'XfrmOutLarvalHeld 5\n'], ['stat-after', `XfrmOutLarvalHeld ${5 + held}\n`],
		]);

	it('reads /proc/meminfo in bytes', () => {
		expect(parseMeminfo('MemFree:  10 kB\nActive(anon):  2 kB\nHugePages_Total:  3\n')).toEqual({ MemFree: 10240, 'Active(anon)': 2048, HugePages_Total: 3 });
	});

	it('divides the slab growth by acquires and by held packets', () => {
		const entries = memoryRunOf(sections(10000, 10000, 24000), 10000, 1);
		expect(entries.sUnreclaimBytes).toBe(24000 * 1024);
		expect(entries.memBytes).toBe(24000 * 1024);
		expect(entries.held).toBe(10000);
		const packets = memoryRunOf(sections(1, 10000, 14000), 1, 10000);
		const row = memoryRowOf('patched', 'xfrm_resolve=1', TCG_2_FULL, entries, packets);
		expect(row.perEntryBytes).toBeCloseTo(2457.6);
		expect(row.perPacketBytes).toBeCloseTo(1433.6);
		expect(row.perEntryOnlyBytes).toBeCloseTo(1024);
	});

	it('gives no figure when the key manager missed ACQUIREs', () => {
		const run = memoryRunOf(sections(9000, 9000, 20000), 10000, 1);
		expect(run.problems).toEqual([expect.stringMatching(/9000\/10000 ACQUIREs/)]);
		expect(memoryRowOf('stock', 'larval_drop=1', TCG_2_FULL, run, null).perEntryBytes).toBeNull();
	});
});
