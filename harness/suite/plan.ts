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

export interface MatrixOptions {
	kernels: readonly string[];
	cases: readonly Case[];
	repeat: number;
	mode?: string;
	/** vCPUs of every guest (default: LARVAL_CPUS, else 2). */
	cpus?: number;
	onCell?: (cell: CellResult) => void;
}

/** Runs every case on every kernel, one guest per kernel (renewed if a case kills it). */
export async function runMatrix(opts: MatrixOptions): Promise<CellResult[]> {
	const cells: CellResult[] = [];
	for (const spec of opts.kernels) {
		const session = new KernelSession(await resolveKernel(spec), 'test', { cpus: opts.cpus });
		try {
			const resolve = await session.hasResolve();
			for (const c of opts.cases) {
				for (const { mode, check } of cellsOf(c, { resolve, onlyMode: opts.mode })) {
					const cell = await session.runCell(c, mode, check, opts.repeat);
					cells.push(cell);
					opts.onCell?.(cell);
				}
			}
		} finally {
			await session.close(cells.some((c) => c.kernel === spec && (c.error || c.findings.length)));
		}
	}
	return cells;
}
