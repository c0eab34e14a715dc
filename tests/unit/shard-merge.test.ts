import { describe, expect, it } from 'vitest';
import { mergeRuns, type RunJson, runJsonOf } from '../../harness/report/merge.js';
import { CASES } from '../../harness/suite/cases.js';
import type { CellResult } from '../../harness/suite/session.js';
import { parseShard, shardOf } from '../../harness/suite/shard.js';

describe('--shard I/N', () => {
	it('puts every case in exactly one shard, each shard keeping the run\'s order', () => {
		const ids = CASES.map((c) => c.id);
		for (const count of [1, 2, 3, 7]) {
			const parts = [...Array(count).keys()].map((i) => shardOf(ids, { index: i + 1, count }));
			expect(parts.flat().sort()).toEqual([...ids].sort());
			for (const p of parts) expect(p).toEqual(ids.filter((id) => p.includes(id)));
			expect(Math.max(...parts.map((p) => p.length)) - Math.min(...parts.map((p) => p.length))).toBeLessThanOrEqual(1);
		}
	});

	it('takes I/N with 1 <= I <= N <= 64, and says so otherwise', () => {
		expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
		for (const bad of ['0/2', '3/2', '1/0', '1/65', '1', 'a/b', '1/2/3', '']) expect(() => parseShard(bad)).toThrow(/--shard takes I\/N/);
	});
});

const cell = (kernel: string, caseId: string, mode = 'larval_drop=1', ok = true): CellResult => ({
	accel: 'tcg',
	cpus: 2,
	preempt: null,
	kernel,
	release: '6.12.117',
	caseId,
	mode,
	outcomes: [],
	violations: ok ? [[]] : [['lost 1/1']],
	findings: [],
});

describe('larval merge', () => {
	const caseIds = ['a', 'b', 'c', 'd'];
	const whole: RunJson = {
		kernels: ['stock', 'patched'],
		repeat: 1,
		cpus: 2,
		caseIds,
		main: false,
		cells: ['stock', 'patched'].flatMap((k) => caseIds.flatMap((c) => [cell(k, c), cell(k, c, 'larval_drop=0')])),
	};
	const shard = (index: number, count: number): RunJson => {
		const mine = new Set(shardOf(caseIds, { index, count }));
		return { ...whole, shard: { index, count }, cells: whole.cells.filter((c) => mine.has(c.caseId)) };
	};

	it('gives back the unsharded run, cells in its order, from shards in any order', () => {
		const merged = mergeRuns([{ name: 's2', run: shard(2, 3) }, { name: 's1', run: shard(1, 3) }, { name: 's3', run: shard(3, 3) }]);
		expect(merged.cells).toEqual(whole.cells);
		expect(merged.kernels).toEqual(whole.kernels);
	});

	it('refuses a missing or doubled shard, a cell twice, and runs that differ', () => {
		expect(() => mergeRuns([{ name: 's1', run: shard(1, 2) }])).toThrow(/shard\(s\) 2\/2 missing/);
		expect(() => mergeRuns([{ name: 'x', run: shard(1, 2) }, { name: 'y', run: shard(1, 2) }])).toThrow(/y and x are both shard 1\/2/);
		expect(() => mergeRuns([{ name: 'x', run: shard(1, 2) }, { name: 'y', run: { ...shard(2, 2), cells: [...shard(2, 2).cells, whole.cells[0]!] } }])).toThrow(/y has stock a \[larval_drop=1\], which another file has too/);
		expect(() => mergeRuns([{ name: 'x', run: shard(1, 2) }, { name: 'y', run: { ...shard(2, 2), repeat: 3 } }])).toThrow(/y ran each cell 3 time\(s\)/);
		expect(() => mergeRuns([{ name: 'x', run: shard(1, 2) }, { name: 'y', run: { ...shard(2, 2), kernels: ['stock'] } }])).toThrow(/y ran kernels stock/);
		expect(() => mergeRuns([{ name: 'x', run: shard(1, 2) }, { name: 'y', run: shard(2, 3) }])).toThrow(/different splits/);
	});

	it('reads a run file or says what is wrong with it', () => {
		expect(runJsonOf(JSON.stringify(whole), 'f').cells).toHaveLength(16);
		expect(() => runJsonOf('{', 'f.json')).toThrow(/f\.json is not JSON/);
		expect(() => runJsonOf('{"rows": []}', 'f.json')).toThrow(/not the JSON of `larval run`/);
	});
});
