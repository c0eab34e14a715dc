import { UsageError } from './errors.js';

/**
 * @value as a count (runs, repeats): a whole number from 1.  Anything else,
 * 0 above all, is refused: a count of 0 runs nothing, and a suite that runs
 * nothing passes every assertion about what it ran.
 */
export function positiveCount(value: string | number, what: string): number {
	const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
	if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${what} must be a whole number from 1, not "${value}"`);
	return n;
}
