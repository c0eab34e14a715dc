import { textTable } from '../report/table.js';
import type { Vm } from '../vm/vm.js';
import { median, spread } from '../util/stats.js';

/** Issue #7: QEMU's start to the first command's completion, under TCG. */
export const BOOT_TARGET_MS = 2000;

/** One boot, on the host's clock: QEMU's start is only known to the host. */
export interface BootTiming {
	/** QEMU's start to the guest's "ready" line on the console (sshd started). */
	guestReadyMs: number;
	/** QEMU's start to a working ssh session. */
	sshMs: number;
	/** QEMU's start to the completion of the first command over that session. */
	firstCommandMs: number;
}

/**
 * Runs the guest's first command (`true`) straight after the boot and adds
 * its round trip to the boot time: Vm.boot() returns as soon as ssh works,
 * so nothing but this call's own promise resolution lies between the two.
 */
export async function timeFirstCommand(vm: Vm): Promise<BootTiming> {
	const started = performance.now();
	const r = await vm.exec('true', { timeoutMs: 30_000 });
	const rtt = performance.now() - started;
	return { guestReadyMs: vm.guestReadyMs, sshMs: vm.bootMs, firstCommandMs: r.code === 0 ? vm.bootMs + rtt : NaN };
}

export interface BootRow {
	kernel: string;
	boots: number;
	guestReadyMs: number | null;
	sshMs: number | null;
	firstCommandMs: number | null;
	firstCommandMinMs: number | null;
	firstCommandMaxMs: number | null;
	withinTarget: boolean | null;
}

/** Median per kernel, in the order the kernels first appear; pure. */
export function summarizeBoots(timings: ReadonlyArray<{ kernel: string; boot: BootTiming }>): BootRow[] {
	const kernels = [...new Set(timings.map((t) => t.kernel))];
	return kernels.map((kernel) => {
		const mine = timings.filter((t) => t.kernel === kernel).map((t) => t.boot);
		const first = mine.map((b) => b.firstCommandMs);
		const firstCommandMs = median(first);
		const range = spread(first);
		return {
			kernel,
			boots: mine.length,
			guestReadyMs: median(mine.map((b) => b.guestReadyMs)),
			sshMs: median(mine.map((b) => b.sshMs)),
			firstCommandMs,
			firstCommandMinMs: range?.min ?? null,
			firstCommandMaxMs: range?.max ?? null,
			withinTarget: firstCommandMs === null ? null : firstCommandMs <= BOOT_TARGET_MS,
		};
	});
}

function s(ms: number | null): string {
	return ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`;
}

export function renderBoots(rows: readonly BootRow[]): string {
	return textTable(
		['kernel', 'boots', 'console ready', 'ssh up', 'first command', 'spread', `target ${s(BOOT_TARGET_MS)}`],
		rows.map((r) => [
			r.kernel,
			String(r.boots),
			s(r.guestReadyMs),
			s(r.sshMs),
			s(r.firstCommandMs),
			r.firstCommandMinMs === null ? 'n/a' : `${s(r.firstCommandMinMs)}..${s(r.firstCommandMaxMs)}`,
			r.withinTarget === null ? 'n/a' : r.withinTarget ? 'met' : 'missed',
		]),
	);
}
