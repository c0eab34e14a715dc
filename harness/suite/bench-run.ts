import type { KernelTarget } from '../kernel/target.js';
import { BOOT_TARGET_MS, summarizeBoots } from './bench-boot.js';
import { BLAST_MS, BLAST_PAYLOAD, BLASTS_PER_BOOT, summarizeFastPath } from './bench-fastpath.js';
import { benchMemory } from './bench-memory.js';
import { type BenchReport, baselineKernel } from './bench-report.js';
import { benchRounds } from './bench-rounds.js';
import { type BenchRow, benchKernel } from './bench.js';

/** The parts of `larval bench`, each with guests of its own. */
export const BENCH_PARTS = ['latency', 'fastpath', 'memory'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

/**
 * Runs the parts asked for on every kernel: the latency figures (one guest
 * per kernel), the fast path and boot times (interleaved rounds, a guest
 * per kernel and round), the memory figures (one guest per kernel).
 */
export async function runBench(kernels: readonly KernelTarget[], repeat: number, parts: readonly BenchPart[] = BENCH_PARTS): Promise<BenchReport> {
	const names = kernels.map((k) => k.name);
	const rows: BenchRow[] = [];
	const accel = new Set<string>();
	if (parts.includes('latency')) {
		for (const k of kernels) rows.push(...(await benchKernel(k, repeat)));
		for (const r of rows) accel.add(r.accel);
	}
	const report: BenchReport = { repeat, kernels: names, accel: [], rows };
	if (parts.includes('fastpath')) {
		const samples = await benchRounds(kernels, repeat);
		const baseline = baselineKernel(names);
		report.fastPath = { baseline, payload: BLAST_PAYLOAD, durationMs: BLAST_MS, blastsPerBoot: BLASTS_PER_BOOT, rows: summarizeFastPath(samples, baseline), samples };
		report.boot = { targetMs: BOOT_TARGET_MS, rows: summarizeBoots(samples) };
		for (const s of samples) accel.add(s.accel);
	}
	if (parts.includes('memory')) {
		report.memory = [];
		for (const k of kernels) report.memory.push(await benchMemory(k));
		for (const m of report.memory) accel.add(m.accel);
	}
	report.accel = [...accel];
	return report;
}
