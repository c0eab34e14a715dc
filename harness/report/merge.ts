import type { CellResult } from '../suite/session.js';
import { UsageError } from '../util/errors.js';

/** What `larval run --json` writes. */
export interface RunJson {
	kernels: string[];
	repeat: number;
	cpus: number;
	/** With --shard: which part of the run this is. */
	shard?: { index: number; count: number };
	/** The whole run's cases in order, before any sharding (merge restores it). */
	caseIds?: string[];
	/** The main job's run (`--main`): its table has a row per case. */
	main?: boolean;
	cells: CellResult[];
}

function isRunJson(x: unknown): x is RunJson {
	const r = x as Partial<RunJson> | null;
	return typeof r === 'object' && r !== null && Array.isArray(r.kernels) && typeof r.repeat === 'number' && Array.isArray(r.cells);
}

/** A run file's content, or a one-line error naming the file. */
export function runJsonOf(text: string, what: string): RunJson {
	let doc: unknown;
	try {
		doc = JSON.parse(text);
	} catch (e) {
		throw new UsageError(`${what} is not JSON: ${(e as Error).message}`);
	}
	if (!isRunJson(doc)) throw new UsageError(`${what} is not the JSON of \`larval run\` (no kernels, repeat and cells)`);
	return doc;
}

const cellKey = (c: CellResult) => `${c.kernel}\u0000${c.caseId}\u0000${c.mode}`;

/**
 * The shards' runs as one: the same kernels, repeat count and vCPUs, each
 * shard of one split given once and all of them present, no cell twice.
 * Cells come back in the order an unsharded run gives them: kernel by
 * kernel, cases in the run's order, each case's modes as the shards ran
 * them.
 * Pure.
 */
export function mergeRuns(runs: ReadonlyArray<{ name: string; run: RunJson }>): RunJson {
	if (!runs.length) throw new UsageError('merge needs at least one run file');
	const [first] = runs;
	const caseOrder = first!.run.caseIds ?? [];
	for (const { name, run } of runs) {
		if (run.kernels.join(',') !== first!.run.kernels.join(',')) throw new UsageError(`${name} ran kernels ${run.kernels.join(', ')}, ${first!.name} ${first!.run.kernels.join(', ')}`);
		if (run.repeat !== first!.run.repeat) throw new UsageError(`${name} ran each cell ${run.repeat} time(s), ${first!.name} ${first!.run.repeat}`);
		if (run.cpus !== first!.run.cpus) throw new UsageError(`${name} ran ${run.cpus} vCPU(s), ${first!.name} ${first!.run.cpus}`);
		if ((run.caseIds ?? []).join(',') !== caseOrder.join(',') || Boolean(run.main) !== Boolean(first!.run.main)) throw new UsageError(`${name} is a part of another run than ${first!.name} (other cases)`);
	}
	const counts = new Set(runs.map((r) => r.run.shard?.count ?? 1));
	if (counts.size > 1) throw new UsageError(`the files are shards of different splits (${[...counts].join(' and ')} parts)`);
	const count = [...counts][0]!;
	const seen = new Map<number, string>();
	for (const { name, run } of runs) {
		const index = run.shard?.index ?? 1;
		if (seen.has(index)) throw new UsageError(`${name} and ${seen.get(index)} are both shard ${index}/${count}`);
		seen.set(index, name);
	}
	const missing = [...Array(count).keys()].map((i) => i + 1).filter((i) => !seen.has(i));
	if (missing.length) throw new UsageError(`shard(s) ${missing.map((i) => `${i}/${count}`).join(', ')} missing`);
	const byKey = new Map<string, CellResult>();
	for (const { name, run } of runs) {
		for (const c of run.cells) {
			if (byKey.has(cellKey(c))) throw new UsageError(`${name} has ${c.kernel} ${c.caseId} [${c.mode}], which another file has too`);
			byKey.set(cellKey(c), c);
		}
	}
	const rank = new Map(caseOrder.map((id, i) => [id, i]));
	const kernelRank = new Map(first!.run.kernels.map((k, i) => [k, i]));
	// Within a kernel and case, the modes keep the order of the file they came from.
	const arrival = new Map([...byKey.keys()].map((k, i) => [k, i]));
	const cells = [...byKey.values()].sort(
		(a, b) =>
			(kernelRank.get(a.kernel) ?? 0) - (kernelRank.get(b.kernel) ?? 0) ||
			(rank.get(a.caseId) ?? Infinity) - (rank.get(b.caseId) ?? Infinity) ||
			arrival.get(cellKey(a))! - arrival.get(cellKey(b))!,
	);
	return { kernels: first!.run.kernels, repeat: first!.run.repeat, cpus: first!.run.cpus, caseIds: [...caseOrder], main: first!.run.main, cells };
}
