import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareFigures, figurePart, figuresOfJson, renderComparison } from '../../harness/report/bench-compare.js';
import { type BenchFigure, benchFigures } from '../../harness/report/bench-figures.js';
import type { BenchRow } from '../../harness/suite/bench.js';

const f = (id: string, value: number | null, better: BenchFigure['better'] = 'lower', gate = true): BenchFigure => ({ id, value, unit: 'x', better, gate });

const row = (over: Partial<BenchRow>): BenchRow => ({
	kernel: 'patched', mode: 'xfrm_resolve=1', accel: 'tcg', cpus: 2, preempt: { model: 'full', dynamic: false }, releaseMs: 1.3, wokenMs: 2.2, steadyOneWayMs: 0.9, releaseRatio: 1.5, saSetupMs: 0.8,
	releaseAfterSetupRatio: 0.5, trapConnectMs: 3.2, keyedConnectMs: 1.6, connectRatio: 2, wakeOneMs: 1.8, wakeManyMs: 7.6, wakeRatio: 4.2, lostReleases: 0, repeats: 5, ...over,
});

describe('bench-compare', () => {
	it('passes changes within the tolerance either way', () => {
		const c = compareFigures([f('a', 2), f('b', 1, 'higher')], [f('a', 2.3), f('b', 0.9, 'higher')], 20);
		expect(c.changes.map((x) => x.verdict)).toEqual(['same', 'same']);
		expect(c.regressions).toEqual([]);
	});

	it('fails a gated ratio that got worse beyond the tolerance, in its own direction', () => {
		const c = compareFigures([f('lower-better', 2), f('higher-better', 1, 'higher')], [f('lower-better', 2.6), f('higher-better', 0.7, 'higher')], 20);
		expect(c.changes.map((x) => x.verdict)).toEqual(['regressed', 'regressed']);
		expect(c.regressions.map((x) => x.id)).toEqual(['lower-better', 'higher-better']);
		expect(c.changes[0]!.change).toBeCloseTo(0.3);
	});

	it('calls a large move in the good direction better, not a regression', () => {
		const c = compareFigures([f('a', 2), f('b', 1, 'higher')], [f('a', 1), f('b', 2, 'higher')], 10);
		expect(c.changes.map((x) => x.verdict)).toEqual(['better', 'better']);
		expect(c.regressions).toEqual([]);
	});

	it('shows ungated figures that got worse without failing', () => {
		const c = compareFigures([f('boot', 2000, 'lower', false)], [f('boot', 4000, 'lower', false)], 10);
		expect(c.changes[0]!.verdict).toBe('worse');
		expect(c.regressions).toEqual([]);
	});

	it('fails a gated figure the current run lost; a new one is only shown', () => {
		const c = compareFigures([f('kept', 1), f('lost', 1), f('nulled', 1)], [f('kept', 1), f('nulled', null), f('new', 3)], 10);
		expect(c.changes.map((x) => [x.id, x.verdict])).toEqual([['kept', 'same'], ['lost', 'gone'], ['nulled', 'gone'], ['new', 'new']]);
		expect(c.regressions.map((x) => x.id)).toEqual(['lost', 'nulled']);
		expect(renderComparison(c)).toMatch(/2 gated figure\(s\) regressed beyond their tolerance: lost, nulled/);
	});

	it('skips figures neither run has, and handles a zero baseline', () => {
		const c = compareFigures([f('none', null), f('zero', 0)], [f('none', null), f('zero', 0)], 10);
		expect(c.changes.map((x) => [x.id, x.verdict])).toEqual([['zero', 'same']]);
		expect(compareFigures([f('zero', 0)], [f('zero', 1)], 10).changes[0]!.verdict).toBe('regressed');
	});

	it('rejects a negative tolerance', () => {
		expect(() => compareFigures([], [], -1)).toThrow(/percentage/);
	});

	it('gates the series\' ratios and shows stock\'s and the absolute figures only', () => {
		const figs = benchFigures({ rows: [row({}), row({ kernel: 'stock', mode: 'larval_drop=1', releaseRatio: null, wakeOneMs: null, wakeManyMs: null, wakeRatio: null })] });
		const gated = figs.filter((x) => x.gate).map((x) => x.id);
		expect(gated).toEqual(['release/steady patched [xfrm_resolve=1]', 'connect ratio patched [xfrm_resolve=1]', 'wake 1000/1 patched [xfrm_resolve=1]']);
		expect(figs.find((x) => x.id === 'release/steady stock [larval_drop=1]')?.value).toBeNull();
		expect(figs.some((x) => x.id.startsWith('wake') && x.id.includes('stock'))).toBe(false);
	});

	it('reads the figures a file recorded, or derives them from an older file\'s rows', () => {
		const recorded = JSON.stringify({ rows: [], figures: [f('a', 1)] });
		expect(figuresOfJson(recorded, 'x')).toEqual([f('a', 1)]);
		const old = JSON.stringify({ repeat: 5, rows: [row({})] });
		expect(figuresOfJson(old, 'x').find((x) => x.id === 'connect ratio patched [xfrm_resolve=1]')?.value).toBe(2);
		expect(() => figuresOfJson('{', 'bad.json')).toThrow(/bad.json is not JSON/);
		expect(() => figuresOfJson('{"figures": []}', 'other.json')).toThrow(/no rows/);
		expect(() => figuresOfJson('{"rows": [], "figures": [{"id": 1}]}', 'm.json')).toThrow(/malformed/);
	});

	it("reads the committed baseline (make bench compares with it): the four gated timing ratios of the README's run and the instruction counts' sixteen", () => {
		const text = readFileSync(new URL('../fixtures/bench-baseline.json', import.meta.url), 'utf8');
		const figures = figuresOfJson(text, 'bench-baseline.json');
		const gated = Object.fromEntries(figures.filter((x) => x.gate && !x.deterministic).map((x) => [x.id, Number(x.value?.toFixed(3))]));
		expect(gated).toEqual({
			'release/steady patched [xfrm_resolve=1]': 1.584,
			'connect ratio patched [xfrm_resolve=1]': 2.024,
			'wake 1000/1 patched [xfrm_resolve=1]': 4.093,
			'received pps patched [xfrm_resolve=1] / stock': 0.894,
		});
		// And the instruction counts' ratios (make bench on 0001-0025), each gated on its own noise, under 1 %.
		const counts = figures.filter((x) => x.gate && x.deterministic);
		expect(counts).toHaveLength(16);
		for (const f of counts) expect(f.tolerancePct).toBeLessThan(1);
		expect(compareFigures(figures, figures, 50).regressions).toEqual([]);
	});

	it('leaves out the baseline figures of parts the current run did not run, never those of a part that ran', () => {
		const baseline = [f('connect ratio patched [xfrm_resolve=1]', 2), f('insns/call poll IPv4 patched [xfrm_resolve off] / stock', 1.001)];
		const insnsOnly = [f('insns/call poll IPv4 patched [xfrm_resolve off] / stock', 1.001)];
		expect(compareFigures(baseline, insnsOnly, 25, new Set(['insns'])).regressions).toEqual([]);
		expect(compareFigures(baseline, insnsOnly, 25).changes.map((x) => x.id)).toEqual(['insns/call poll IPv4 patched [xfrm_resolve off] / stock']);
		// latency ran and produced nothing: its gated figure is gone
		expect(compareFigures(baseline, insnsOnly, 25, new Set(['insns', 'latency'])).regressions.map((x) => x.id)).toEqual(['connect ratio patched [xfrm_resolve=1]']);
		expect(figurePart('received pps patched [xfrm_resolve=1] / stock')).toBe('fastpath');
		expect(figurePart('bytes per held packet patched [xfrm_resolve=1]')).toBe('memory');
	});
});
