import { type ResultPromise, execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { topology } from '../../harness/net/topology.js';
import { INSN_FAMILIES, type InsnOp, type InsnRun, measureInsns } from '../../harness/suite/bench-insns.js';
import { median } from '../../harness/util/stats.js';
import { bootGuest } from '../../harness/vm/guest.js';
import { guestPids } from '../../harness/vm/run-id.js';

/**
 * The instruction counter is an oracle (make bench gates the series on
 * it), so it is tested: a guest under -icount counts the same instructions
 * per call whether the host is idle or its CPU is taken by busy loops
 * pinned with the guest's QEMU to one core, which slows the guest's
 * wall-clock progress severalfold; and its TSC, read by larval-insns, runs
 * with the guest's own clock (both advance by one per instruction).
 */
/**
 * Two calls are enough for the claim and keep the file near half a
 * minute: an unconnected sendto() (route, policy and state lookup, ESP)
 * and a poll() (no packet at all); make bench measures all four.
 */
const OPS: readonly InsnOp[] = ['sendto', 'poll'];

async function measureOnce(load: boolean): Promise<{ runs: InsnRun[]; hostMs: number }> {
	const guest = await bootGuest(await resolveKernel('stock'), { icount: true });
	const hogs: ResultPromise[] = [];
	try {
		if (load) {
			const [pid] = await guestPids();
			expect(pid, 'the guest QEMU of this run').toBeDefined();
			// Every thread of QEMU on core 0, with two loops that never yield it.
			await execa('taskset', ['-a', '-p', '-c', '0', String(pid)]);
			for (let i = 0; i < 2; i++) hogs.push(execa('taskset', ['-c', '0', 'sh', '-c', 'while :; do :; done'], { reject: false }));
		}
		const t0 = performance.now();
		const runs = (await measureInsns(guest.vm, topology('transport'), [{ setting: 'stock', sysctls: {} }], OPS)).get('stock')!;
		return { runs, hostMs: performance.now() - t0 };
	} finally {
		for (const h of hogs) h.kill('SIGKILL');
		await Promise.all(hogs);
		await guest.vm.stop();
	}
}

describe('guest instructions under -icount', () => {
	it('are the same on an idle host and on a host whose core the guest shares with two busy loops', { timeout: 10 * 60_000 }, async () => {
		const idle = await measureOnce(false);
		const loaded = await measureOnce(true);
		for (const r of [...idle.runs, ...loaded.runs]) expect(r.problems).toEqual([]);
		// The premise: the load really slowed the guest down, in the host's time.
		expect(loaded.hostMs / idle.hostMs, `host time of the measurements: idle ${Math.round(idle.hostMs)} ms, loaded ${Math.round(loaded.hostMs)} ms`).toBeGreaterThan(1.5);
		for (const op of OPS) {
			for (const family of INSN_FAMILIES) {
				const of = (runs: InsnRun[]) => runs.find((r) => r.op === op && r.family === family)!;
				const a = median(of(idle.runs).perCall)!;
				const b = median(of(loaded.runs).perCall)!;
				// Two boots differ by up to 0.4 % (sendto, make bench's rounds); without the counter a third of the CPU would triple it.
				expect(Math.abs(b - a) / a, `${op} IPv${family}: ${a.toFixed(1)} idle, ${b.toFixed(1)} loaded instructions per call`).toBeLessThan(0.01);
				// TSC and CLOCK_MONOTONIC: one instruction, one nanosecond, to the loop around the batches.
				const r = of(loaded.runs);
				const tsc = r.perCall.reduce((s, x) => s + x, 0) * r.ops;
				expect(r.monotonicNs / tsc, `${op} IPv${family}: monotonic ${r.monotonicNs} ns for ${tsc} TSC ticks`).toBeGreaterThan(0.999);
				expect(r.monotonicNs / tsc).toBeLessThan(1.01);
			}
		}
	});
});
