import type { KernelTarget } from '../kernel/target.js';
import type { GuestOptions } from '../vm/guest.js';
import { describeMachine, type GuestMachine } from '../vm/machine.js';
import { BOOT_TARGET_MS, summarizeBoots } from './bench-boot.js';
import { BLAST_MS, BLAST_PAYLOAD, BLASTS_PER_BOOT, summarizeFastPath } from './bench-fastpath.js';
import { benchInsns, INSN_BATCHES, INSN_OPS_PER_BATCH, INSN_PAYLOAD, INSN_WARMUP, summarizeInsns } from './bench-insns.js';
import { benchMemory } from './bench-memory.js';
import { type BenchReport, baselineKernel } from './bench-report.js';
import { benchRounds } from './bench-rounds.js';
import { type BenchRow, benchKernel } from './bench.js';

/** The parts of `larval bench`, each with guests of its own. */
export const BENCH_PARTS = ['latency', 'fastpath', 'insns', 'memory'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

/**
 * Runs the parts asked for on every kernel: the latency figures (one guest
 * per kernel), the fast path and boot times (interleaved rounds, a guest
 * per kernel and round), the instruction counts (interleaved rounds under
 * -icount, one vCPU whatever --cpus says), the memory figures (one guest
 * per kernel).
 */
export async function runBench(kernels: readonly KernelTarget[], repeat: number, parts: readonly BenchPart[] = BENCH_PARTS, guestOptions: Pick<GuestOptions, 'cpus'> = {}): Promise<BenchReport> {
	const names = kernels.map((k) => k.name);
	const rows: BenchRow[] = [];
	const accel = new Set<string>();
	const machines = new Set<string>();
	const saw = (m: GuestMachine & { kernel: string }) => {
		accel.add(m.accel);
		machines.add(`${m.kernel}: ${describeMachine(m)}`);
	};
	if (parts.includes('latency')) {
		for (const k of kernels) rows.push(...(await benchKernel(k, repeat, guestOptions)));
		rows.forEach(saw);
	}
	const report: BenchReport = { repeat, kernels: names, accel: [], machines: [], rows };
	if (parts.includes('fastpath')) {
		const samples = await benchRounds(kernels, repeat, guestOptions);
		const baseline = baselineKernel(names);
		report.fastPath = { baseline, payload: BLAST_PAYLOAD, durationMs: BLAST_MS, blastsPerBoot: BLASTS_PER_BOOT, rows: summarizeFastPath(samples, baseline), samples };
		report.boot = { targetMs: BOOT_TARGET_MS, rows: summarizeBoots(samples) };
		samples.forEach(saw);
	}
	if (parts.includes('insns')) {
		const samples = await benchInsns(kernels, repeat);
		const baseline = baselineKernel(names);
		report.insns = { baseline, payload: INSN_PAYLOAD, opsPerBatch: INSN_OPS_PER_BATCH, batches: INSN_BATCHES, warmup: INSN_WARMUP, rows: summarizeInsns(samples, baseline), samples };
		accel.add('tcg');
		for (const k of names) machines.add(`${k} (instruction counts): tcg -icount, 1 vCPU`);
	}
	if (parts.includes('memory')) {
		report.memory = [];
		for (const k of kernels) report.memory.push(await benchMemory(k, guestOptions));
		report.memory.forEach(saw);
	}
	report.accel = [...accel];
	report.machines = [...machines];
	return report;
}
