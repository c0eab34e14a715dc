import { UsageError } from '../util/errors.js';

/**
 * One of N deterministic parts of a run (`larval run --shard I/N`), so that
 * N machines, or N jobs of a CI matrix, split a matrix and `larval merge`
 * puts the parts back together.  The unit is the case: a shard runs every
 * kernel and mode of its cases, since which modes a kernel has is known
 * only once it boots, and a case's cells are compared side by side.
 */
export interface Shard {
	/** 1-based. */
	index: number;
	count: number;
}

const SHARD = /^(\d+)\/(\d+)$/;

/** "I/N" with 1 <= I <= N <= 64, or a one-line error. */
export function parseShard(text: string): Shard {
	const m = SHARD.exec(text.trim());
	const index = m ? Number(m[1]) : NaN;
	const count = m ? Number(m[2]) : NaN;
	if (!m || !(count >= 1 && count <= 64) || !(index >= 1 && index <= count)) {
		throw new UsageError(`--shard takes I/N with 1 <= I <= N <= 64, not "${text}"`);
	}
	return { index, count };
}

/**
 * The items of @shard: every count-th, starting at the index-th, of @items
 * in their given order.  Over the N shards every item is in exactly one,
 * and a shard's items keep their order, so merged results read as one
 * run's.  Pure.
 */
export function shardOf<T>(items: readonly T[], shard: Shard): T[] {
	return items.filter((_, i) => i % shard.count === shard.index - 1);
}
