import { resolveKernel } from '../kernel/target.js';
import { UsageError } from '../util/errors.js';
import { CASES, type Case, SOAK_CASES, type Check, type Mode, modeById, RESOLVE_1 } from './cases.js';
import { type CellResult, KernelSession } from './session.js';

/**
 * The modes a case runs in and the check for each.  Every kernel runs the
 * stock modes against stock's expectations (on the patched kernel that is
 * the compatibility check: xfrm_resolve=0 must change nothing); a kernel
 * with net.core.xfrm_resolve also runs the series' mode.
 */
export function cellsOf(c: Case, opts: { resolve?: boolean; onlyMode?: string } = {}): Array<{ mode: Mode; check: Check }> {
	const cells = Object.entries(c.stock).map(([id, check]) => ({ mode: modeById(id), check: check! }));
	if (opts.resolve && c.resolved) cells.push({ mode: RESOLVE_1, check: c.resolved });
	return cells.filter((x) => !opts.onlyMode || x.mode.id === opts.onlyMode);
}

/** Cases whose id matches a glob-ish pattern (`*` wildcard) or a substring; the soak cases only when a pattern names them. */
export function selectCases(pattern?: string): Case[] {
	if (!pattern) return [...CASES];
	const re = pattern.includes('*') ? new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`) : null;
	const picked = [...CASES, ...SOAK_CASES].filter((c) => (re ? re.test(c.id) : c.id.includes(pattern)));
	if (!picked.length) throw new UsageError(`no case matches "${pattern}"; cases: ${CASES.map((c) => c.id).join(', ')}`);
	return picked;
}

/**
 * The main job's cases (`larval run --main`, `make run`): every behaviour
 * of the README's table once, IPv4 and IPv6 where it is one more cell.
 * Each runs in one mode per kernel (mainCellsOf), once: Debian's kernel as
 * users run it against the series, in a few minutes.
 */
export const MAIN_CASE_IDS: readonly string[] = [
	'tcp-connect-blackhole', 'tcp6-connect-blackhole',
	'udp-datagrams-lost', 'udp6-datagrams-lost',
	'udp-poll-lies', 'udp-nonblock-pollout',
	'ping-lost', 'glibc-resolver',
	'tcp-connect-km-never', 'udp-connect-acquire-fails',
	'tunnel-udp-lost', 'tcp-connect-blackhole-fw',
];

export function mainCases(): Case[] {
	return MAIN_CASE_IDS.map((id) => {
		const c = CASES.find((x) => x.id === id);
		if (!c) throw new Error(`MAIN_CASE_IDS names ${id}, which is not a case`);
		return c;
	});
}

/**
 * The main job's one cell of @c on a kernel: the series' mode where the
 * kernel has it, else stock's default (larval_drop=1, what users run).
 * The compatibility rows and the hold queue are `make run-full`'s.
 */
export function mainCellsOf(c: Case, resolve: boolean): Array<{ mode: Mode; check: Check }> {
	if (resolve && c.resolved) return [{ mode: RESOLVE_1, check: c.resolved }];
	const check = c.stock['larval_drop=1'];
	return check ? [{ mode: modeById('larval_drop=1'), check }] : cellsOf(c).slice(0, 1);
}

/** Where a matrix run is: cells done of the total, and the time left at the pace so far. */
export interface MatrixProgress {
	done: number;
	total: number;
	/** At the mean pace of the cells so far (each cell's own time, the boots of fresh guests in it; not kernel builds). */
	leftMs: number;
}

/** "[12/26, about 1.4 min left]": where a run is, for its progress lines. */
export function progressText(p: MatrixProgress): string {
	const left = p.done >= p.total ? 'done' : p.leftMs >= 90_000 ? `about ${(p.leftMs / 60_000).toFixed(1)} min left` : `about ${Math.max(1, Math.round(p.leftMs / 1000))} s left`;
	return `[${p.done}/${p.total}, ${left}] `;
}

export interface MatrixOptions {
	kernels: readonly string[];
	cases: readonly Case[];
	repeat: number;
	mode?: string;
	/** One cell per case and kernel (mainCellsOf) instead of every mode. */
	main?: boolean;
	/** vCPUs of every guest (default: LARVAL_CPUS, else 2). */
	cpus?: number;
	onCell?: (cell: CellResult, progress: MatrixProgress) => void;
}

/**
 * The cells of a kernel before it boots: a named patched kernel has the
 * series' switch, a stock or distro one does not, a path is guessed to
 * have it (the count is corrected once the guest says).
 */
function expectedResolve(spec: string): boolean {
	return !/^(stock|distro)(-|$)/.test(spec);
}

/** Runs every case on every kernel, one guest per kernel (renewed if a case kills it). */
export async function runMatrix(opts: MatrixOptions): Promise<CellResult[]> {
	const cells: CellResult[] = [];
	const plan = (c: Case, resolve: boolean) => (opts.main ? mainCellsOf(c, resolve) : cellsOf(c, { resolve, onlyMode: opts.mode }));
	const countFor = (resolve: boolean) => opts.cases.reduce((n, c) => n + plan(c, resolve).length, 0);
	const perKernel = opts.kernels.map((k) => countFor(expectedResolve(k)));
	// The pace of the cells themselves: a kernel's build before its first cell would swell it tenfold.
	let cellsMs = 0;
	for (const [k, spec] of opts.kernels.entries()) {
		const session = new KernelSession(await resolveKernel(spec), 'test', { cpus: opts.cpus });
		try {
			const resolve = await session.hasResolve();
			perKernel[k] = countFor(resolve);
			for (const c of opts.cases) {
				for (const { mode, check } of plan(c, resolve)) {
					const cell = await session.runCell(c, mode, check, opts.repeat);
					cells.push(cell);
					cellsMs += cell.ms ?? 0;
					const total = perKernel.reduce((a, b) => a + b, 0);
					opts.onCell?.(cell, { done: cells.length, total, leftMs: (cellsMs / cells.length) * (total - cells.length) });
				}
			}
		} finally {
			await session.close(cells.some((c) => c.kernel === spec && (c.error || c.findings.length)));
		}
	}
	return cells;
}
