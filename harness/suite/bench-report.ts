import { type BootRow, BOOT_TARGET_MS, renderBoots } from './bench-boot.js';
import { type FastPathRow, renderFastPath } from './bench-fastpath.js';
import { type InsnRow, type InsnSample, renderInsns } from './bench-insns.js';
import { MEMORY_PAYLOAD, type MemoryRow, renderMemory } from './bench-memory.js';
import type { RoundSample } from './bench-rounds.js';
import { type BenchRow, renderBench } from './bench.js';

/** What `larval bench` measured, as written to --json (plus its figures, harness/report/bench-figures.ts). */
export interface BenchReport {
	repeat: number;
	kernels: string[];
	accel: string[];
	/** Per kernel, each machine its guests ran on: "stock: tcg, 2 vCPUs, PREEMPT". */
	machines: string[];
	rows: BenchRow[];
	fastPath?: {
		/** The kernel the others' packet rates are divided by. */
		baseline: string;
		payload: number;
		durationMs: number;
		blastsPerBoot: number;
		rows: FastPathRow[];
		/** Every round's run and boot, for a second look at the spread. */
		samples: RoundSample[];
	};
	/** Guest instructions per socket call under QEMU's instruction counter. */
	insns?: {
		baseline: string;
		payload: number;
		opsPerBatch: Readonly<Record<string, number>>;
		batches: number;
		warmup: number;
		rows: InsnRow[];
		samples: InsnSample[];
	};
	boot?: { targetMs: number; rows: BootRow[] };
	memory?: MemoryRow[];
}

/** The kernel the fast-path ratio divides by: stock when it ran, else the first. */
export function baselineKernel(kernels: readonly string[]): string {
	return kernels.includes('stock') ? 'stock' : kernels[0] ?? '';
}

export function renderBenchReport(r: BenchReport): string {
	const parts = r.rows.length ? [renderBench(r.rows)] : [];
	if (r.fastPath) {
		parts.push(`Fast path, SA in place: UDP datagrams of ${r.fastPath.payload} bytes through ESP for ${(r.fastPath.durationMs / 1000).toFixed(1)} s, one unconnected sendto() each; per boot the best of ${r.fastPath.blastsPerBoot} blasts, median of rounds, each booting every kernel in turn\n${renderFastPath(r.fastPath.rows, r.fastPath.baseline)}`);
	}
	if (r.insns) {
		const i = r.insns;
		parts.push(
			`Instructions per call, SA in place (deterministic: QEMU's -icount, the guest's TSC counting instructions; UDP through ESP to a dummy device, TCP round trips of ${i.payload} bytes to an echo peer): ` +
				`median of ${i.batches} batches (${Object.entries(i.opsPerBatch).map(([op, n]) => `${n} ${op}`).join(', ')}) per round, ratios round by round; noise = 1.4826 MAD of the batches\n${renderInsns(i.rows, i.baseline)}`,
		);
	}
	if (r.memory?.length) {
		parts.push(`Memory of pending acquires (unreclaimable slab, /proc/meminfo before and after; ${MEMORY_PAYLOAD}-byte datagrams; key manager never answers)\n${renderMemory(r.memory)}`);
	}
	if (r.boot) parts.push(`Boot: QEMU's start to the first command's completion over ssh (target ${(BOOT_TARGET_MS / 1000).toFixed(1)} s); median of the rounds' boots\n${renderBoots(r.boot.rows)}`);
	return parts.join('\n\n');
}
