import { positiveCount } from '../../harness/util/count.js';

/**
 * How many times each case runs per kernel and mode (LARVAL_REPEAT
 * overrides all).  The series' own rows run 3 times; the stock matrix on
 * stock (and on patched with the switch off) and the strongSwan cases twice; Debian's kernel, a cross-check of
 * the stock one built here, once.  With every case three times `make test`
 * took 58 min with the kernels cached, and a fresh CI machine adds the
 * kernel builds (~7 min, and ~13 min for the debug flavour whose fault
 * rows `make test` runs) to a 90 min budget.
 */
const DEFAULT_REPEAT = { patched: 3, stock: 2, distro: 1, strongswan: 2 } as const;

/** LARVAL_REPEAT, or the suite's default: a whole number from 1 (0 would run nothing and pass). */
export function repeatFor(suite: keyof typeof DEFAULT_REPEAT, env: NodeJS.ProcessEnv = process.env): number {
	const v = env.LARVAL_REPEAT;
	return v === undefined ? DEFAULT_REPEAT[suite] : positiveCount(v, 'LARVAL_REPEAT');
}
