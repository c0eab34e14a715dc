import { RESOLVE_1 } from '../suite/cases.js';
import type { BenchReport } from '../suite/bench-report.js';
import { WAKE_MANY } from '../suite/bench.js';

/** One named number of a bench run, as compared across runs (harness/report/bench-compare.ts). */
export interface BenchFigure {
	id: string;
	value: number | null;
	unit: string;
	better: 'lower' | 'higher';
	/**
	 * Whether a regression fails the comparison: the series' ratios, each
	 * against its own baseline in the same run, which the host's speed
	 * cancels out of.  Absolute times, rates and sizes move with the host
	 * and are shown only.
	 */
	gate: boolean;
	/**
	 * A count the host's load cannot move (instructions under -icount): it
	 * is compared with its own tolerance, its measured noise, not the run's
	 * percentage for timings.
	 */
	deterministic?: boolean;
	/** This figure's own tolerance in percent (its measured noise); the run's --tolerance when absent. */
	tolerancePct?: number;
}

function fig(id: string, value: number | null | undefined, unit: string, better: BenchFigure['better'], gate = false): BenchFigure {
	return { id, value: value ?? null, unit, better, gate };
}

/**
 * A deterministic figure, allowed to move by its measured noise, at least
 * COUNT_TOLERANCE_FLOOR_PCT: boots differ by a few instructions per call
 * (hash seeds, where the slab allocator stands), which a run of one round
 * has no range over rounds to show.
 */
export const COUNT_TOLERANCE_FLOOR_PCT = 0.05;

function countFig(id: string, value: number | null, unit: string, noisePct: number | null, gate: boolean): BenchFigure {
	return { ...fig(id, value, unit, 'lower', gate), deterministic: true, tolerancePct: Math.max(noisePct ?? 0, COUNT_TOLERANCE_FLOOR_PCT) };
}

/**
 * The figures of a report, in the order the tables show them.  Tolerates
 * reports written before a section existed: an older baseline simply has
 * fewer figures.
 */
export function benchFigures(r: Partial<BenchReport>): BenchFigure[] {
	const out: BenchFigure[] = [];
	for (const row of r.rows ?? []) {
		const at = `${row.kernel} [${row.mode}]`;
		const series = row.mode === RESOLVE_1.id;
		out.push(
			fig(`release/steady ${at}`, row.releaseRatio, 'x', 'lower', series),
			fig(`(release - set-up)/steady ${at}`, row.releaseAfterSetupRatio, 'x', 'lower'),
			fig(`connect ratio ${at}`, row.connectRatio, 'x', 'lower', series),
			fig(`release ${at}`, row.releaseMs, 'ms', 'lower'),
			fig(`steady 1-way ${at}`, row.steadyOneWayMs, 'ms', 'lower'),
		);
		if (row.wakeOneMs !== null || row.wakeManyMs !== null) out.push(fig(`wake ${WAKE_MANY}/1 ${at}`, row.wakeRatio, 'x', 'lower', series));
	}
	const fp = r.fastPath;
	for (const row of fp?.rows ?? []) {
		const at = `${row.kernel} [${row.mode}]`;
		out.push(fig(`received pps ${at}`, row.receivedPps, 'pps', 'higher'));
		if (row.switchRatio !== null) out.push(fig(`received pps ${at} / xfrm_resolve=0, same boot`, row.switchRatio, 'x', 'higher'));
		if (row.kernel !== fp!.baseline) {
			out.push(fig(`received pps ${at} / ${fp!.baseline}`, row.ratio, 'x', 'higher', true), fig(`sent pps ${at} / ${fp!.baseline}`, row.sentRatio, 'x', 'higher'));
		}
	}
	const ins = r.insns;
	for (const row of ins?.rows ?? []) {
		const at = `${row.op} IPv${row.family} ${row.kernel} [${row.setting === 'stock' ? 'no switch' : `xfrm_resolve ${row.setting}`}]`;
		out.push(countFig(`insns/call ${at}`, row.perCall, 'insns', row.noisePct, false));
		if (row.kernel !== ins!.baseline) out.push(countFig(`insns/call ${at} / ${ins!.baseline}`, row.ratio, 'x', row.ratioNoisePct, true));
	}
	for (const m of r.memory ?? []) {
		const at = `${m.kernel} [${m.mode}]`;
		out.push(fig(`bytes per entry ${at}`, m.perEntryBytes, 'B', 'lower'));
		if (m.packets) out.push(fig(`bytes per held packet ${at}`, m.perPacketBytes, 'B', 'lower'), fig(`bytes per entry alone ${at}`, m.perEntryOnlyBytes, 'B', 'lower'));
	}
	for (const b of r.boot?.rows ?? []) out.push(fig(`boot to first command ${b.kernel}`, b.firstCommandMs, 'ms', 'lower'));
	return out;
}
