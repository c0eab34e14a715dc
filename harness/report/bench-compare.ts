import { UsageError } from '../util/errors.js';
import { type BenchFigure, benchFigures } from './bench-figures.js';
import { textTable } from './table.js';

/** Ratios under TCG move by a fifth from run to run on an idle host (README, benchmark section). */
export const DEFAULT_TOLERANCE_PCT = 25;

export type Verdict = 'same' | 'better' | 'worse' | 'regressed' | 'new' | 'gone';

export interface FigureChange {
	id: string;
	unit: string;
	gate: boolean;
	deterministic: boolean;
	/** The tolerance this figure was held to, in percent. */
	tolerancePct: number;
	baseline: number | null;
	current: number | null;
	/** (current - baseline) / |baseline|, or null when either is missing. */
	change: number | null;
	verdict: Verdict;
}

export interface Comparison {
	changes: FigureChange[];
	/** Gated figures that regressed beyond the tolerance, or that the current run lost. */
	regressions: FigureChange[];
	tolerancePct: number;
}

function verdictOf(b: BenchFigure | undefined, c: BenchFigure | undefined, change: number | null, tol: number): Verdict {
	if (!b || b.value === null) return 'new';
	if (!c || c.value === null) return 'gone';
	if (change === null || Math.abs(change) <= tol) return 'same';
	const worse = (c.better === 'lower') === change > 0;
	if (!worse) return 'better';
	return c.gate ? 'regressed' : 'worse';
}

/** The part of `larval bench` (bench-run.ts BENCH_PARTS) a figure comes from, by its name. */
export function figurePart(id: string): 'latency' | 'fastpath' | 'insns' | 'memory' {
	if (id.startsWith('insns/')) return 'insns';
	if (/^(received|sent) pps |^boot to first command /.test(id)) return 'fastpath';
	if (id.startsWith('bytes per ')) return 'memory';
	return 'latency';
}

/**
 * Every figure of either run, baseline's order first: a gated figure that
 * got worse by more than @tolerancePct percent, or that the baseline had
 * and the current run has not, is a regression.  A baseline figure of a
 * part the current run did not run (`--only`) is left out: it is not
 * gone, it was not asked for.  Pure.
 */
export function compareFigures(baseline: readonly BenchFigure[], current: readonly BenchFigure[], tolerancePct = DEFAULT_TOLERANCE_PCT, partsRun?: ReadonlySet<string>): Comparison {
	if (!(tolerancePct >= 0)) throw new UsageError(`the tolerance must be a percentage, not ${tolerancePct}`);
	// Two files (bench-compare): the parts the current one has figures of.
	const ran = partsRun ?? new Set(current.map((f) => figurePart(f.id)));
	const base = new Map(baseline.filter((f) => ran.has(figurePart(f.id))).map((f) => [f.id, f]));
	const cur = new Map(current.map((f) => [f.id, f]));
	const ids = [...new Set([...base.keys(), ...cur.keys()])];
	const changes = ids.flatMap((id): FigureChange[] => {
		const b = base.get(id);
		const c = cur.get(id);
		const bv = b?.value ?? null;
		const cv = c?.value ?? null;
		if (bv === null && cv === null) return [];
		const change = bv !== null && cv !== null ? (bv === 0 ? (cv === 0 ? 0 : Infinity * Math.sign(cv)) : (cv - bv) / Math.abs(bv)) : null;
		// A deterministic figure moves by its measured noise, whichever run measured more.
		const own = [b?.tolerancePct, c?.tolerancePct].filter((t): t is number => typeof t === 'number');
		const tol = own.length ? Math.max(...own) : tolerancePct;
		const verdict = verdictOf(b, c, change, tol / 100);
		const gate = (c ?? b)!.gate;
		return [{ id, unit: (c ?? b)!.unit, gate, deterministic: Boolean((c ?? b)!.deterministic), tolerancePct: tol, baseline: bv, current: cv, change, verdict }];
	});
	const regressions = changes.filter((x) => x.verdict === 'regressed' || (x.verdict === 'gone' && x.gate));
	return { changes, regressions, tolerancePct };
}

function value(v: number | null, unit: string): string {
	if (v === null) return '-';
	const n = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : unit === 'x' ? v.toFixed(4) : v.toFixed(3);
	return unit === 'x' ? `${n}x` : `${n} ${unit}`;
}

export function renderComparison(c: Comparison): string {
	const table = textTable(
		['figure', 'kind', 'baseline', 'current', 'change', 'allowed', 'verdict'],
		c.changes.map((x) => [
			`${x.id}${x.gate ? ' *' : ''}`,
			x.deterministic ? 'deterministic' : 'timing',
			value(x.baseline, x.unit),
			value(x.current, x.unit),
			x.change === null ? '-' : `${x.change >= 0 ? '+' : ''}${(x.change * 100).toFixed(x.deterministic ? 3 : 1)}%`,
			`${x.tolerancePct < 1 ? x.tolerancePct.toFixed(3) : x.tolerancePct.toFixed(0)}%`,
			x.verdict === 'gone' && x.gate ? 'REGRESSED (gone)' : x.verdict === 'regressed' ? 'REGRESSED' : x.verdict,
		]),
	);
	const verdict = c.regressions.length
		? `${c.regressions.length} gated figure(s) regressed beyond their tolerance: ${c.regressions.map((x) => x.id).join(', ')}`
		: 'no gated figure regressed beyond its tolerance';
	return (
		`${table}\n\n* gated: a regression beyond the tolerance fails the comparison; the others are shown only.\n` +
		`deterministic: instruction counts under -icount, which the host's load cannot move; allowed their measured noise.  timing: allowed ${c.tolerancePct}% (--tolerance).\n${verdict}`
	);
}

function isFigure(x: unknown): x is BenchFigure {
	const f = x as Partial<BenchFigure> | null;
	return typeof f === 'object' && f !== null && typeof f.id === 'string' && (typeof f.value === 'number' || f.value === null) && (f.better === 'lower' || f.better === 'higher');
}

/**
 * The figures of a `larval bench --json` file's content: those it recorded,
 * or, for a file written before figures were, those of its tables.
 */
export function figuresOfJson(text: string, what: string): BenchFigure[] {
	let doc: unknown;
	try {
		doc = JSON.parse(text);
	} catch (e) {
		throw new UsageError(`${what} is not JSON: ${(e as Error).message}`);
	}
	if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { rows?: unknown }).rows)) throw new UsageError(`${what} is not the JSON of \`larval bench\` (no rows)`);
	const figures = (doc as { figures?: unknown }).figures;
	if (Array.isArray(figures)) {
		if (!figures.every(isFigure)) throw new UsageError(`${what}: malformed figures`);
		return figures.map((f) => ({ ...f, unit: String(f.unit ?? ''), gate: Boolean(f.gate), ...(typeof f.tolerancePct === 'number' ? { tolerancePct: f.tolerancePct } : {}), ...(f.deterministic ? { deterministic: true } : {}) }));
	}
	return benchFigures(doc as Parameters<typeof benchFigures>[0]);
}
