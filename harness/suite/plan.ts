import { resolveKernel } from '../kernel/target.js';
import { LarvalError } from '../util/errors.js';
import { CASES, type Case, type Check, type Mode, modeById } from './cases.js';
import { type CellResult, KernelSession } from './session.js';

/** The modes a case runs in and the check for each; stock expectations for every kernel until the series adds xfrm_resolve. */
export function cellsOf(c: Case, onlyMode?: string): Array<{ mode: Mode; check: Check }> {
	return Object.entries(c.stock)
		.filter(([id]) => !onlyMode || id === onlyMode)
		.map(([id, check]) => ({ mode: modeById(id), check: check! }));
}

/** Cases whose id matches a glob-ish pattern (`*` wildcard) or a substring. */
export function selectCases(pattern?: string): Case[] {
	if (!pattern) return [...CASES];
	const re = pattern.includes('*') ? new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`) : null;
	const picked = CASES.filter((c) => (re ? re.test(c.id) : c.id.includes(pattern)));
	if (!picked.length) throw new LarvalError(`no case matches "${pattern}"; cases: ${CASES.map((c) => c.id).join(', ')}`);
	return picked;
}

export interface MatrixOptions {
	kernels: readonly string[];
	cases: readonly Case[];
	repeat: number;
	mode?: string;
	onCell?: (cell: CellResult) => void;
}

/** Runs every case on every kernel, one guest per kernel (renewed if a case kills it). */
export async function runMatrix(opts: MatrixOptions): Promise<CellResult[]> {
	const cells: CellResult[] = [];
	for (const spec of opts.kernels) {
		const session = new KernelSession(await resolveKernel(spec));
		try {
			for (const c of opts.cases) {
				for (const { mode, check } of cellsOf(c, opts.mode)) {
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
