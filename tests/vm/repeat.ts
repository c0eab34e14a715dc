import { positiveCount } from '../../harness/util/count.js';
import { UsageError } from '../../harness/util/errors.js';

/**
 * Two tiers of the suites that boot guests.  `ci` (the default, `make
 * test`, what CI runs) fits CI's budget on a fresh 2-core machine: every
 * case of the matrices, the series' rows and the stock rows once each, the
 * strongSwan and libreswan cases on patched (both switches), the stress on the base and
 * debug flavours.  `full` (`make test-full`) is every suite at its full
 * size: the series' rows 3 times, the stock matrix twice on stock and once
 * on Debian's kernel, strongSwan and libreswan on all three kernels, the stress on the
 * race (KCSAN) flavour too.  Set by LARVAL_TIER.
 */
export type Tier = 'ci' | 'full';

export function tierOf(env: NodeJS.ProcessEnv = process.env): Tier {
	const v = env.LARVAL_TIER ?? 'ci';
	if (v !== 'ci' && v !== 'full') throw new UsageError(`LARVAL_TIER must be ci or full, not "${v}"`);
	return v;
}

/**
 * How many times each case runs per kernel and mode (LARVAL_REPEAT
 * overrides all).  `full` took 56-58 min with the kernels cached on one
 * vCPU; a fresh CI machine adds ~30 min of kernel builds (stock ~10 min
 * cold, patched ~5, the debug flavour ~13) to a 90 min budget, hence `ci`.
 */
const DEFAULT_REPEAT = {
	// patched 1 in ci since 2026-12-01: at 2, make test took 54 min warm once libreswan and the programs suite joined it.
	ci: { patched: 1, stock: 1, distro: 1, strongswan: 1, libreswan: 1 },
	full: { patched: 3, stock: 2, distro: 1, strongswan: 2, libreswan: 2 },
} as const;

/** LARVAL_REPEAT, or the tier's default: a whole number from 1 (0 would run nothing and pass). */
export function repeatFor(suite: keyof (typeof DEFAULT_REPEAT)['ci'], env: NodeJS.ProcessEnv = process.env): number {
	const v = env.LARVAL_REPEAT;
	return v === undefined ? DEFAULT_REPEAT[tierOf(env)][suite] : positiveCount(v, 'LARVAL_REPEAT');
}

/**
 * The matrix's rows under the stateful firewall (the `-fw` cases) in the
 * `ci` tier: on patched the series' row once (its compatibility rows with
 * the firewall repeat stock's), on stock the hold queue's row
 * (larval_drop=0: the bug; larval_drop=1 drops the packets as without the
 * firewall).  Every row in `full`.  Returns how many times to run the
 * cell, 0 for not at all.
 */
export function firewallRowRepeat(c: { firewall?: string }, modeId: string, kernel: 'patched' | 'stock' | 'distro', repeat: number, env: NodeJS.ProcessEnv = process.env): number {
	if (!c.firewall || tierOf(env) === 'full') return repeat;
	if (kernel === 'patched') return modeId === 'xfrm_resolve=1' ? 1 : 0;
	return modeId === 'larval_drop=0' ? repeat : 0;
}

/**
 * The patched kernel's compatibility rows (xfrm_resolve=0: stock's
 * behaviour, unchanged) in the `ci` tier: the default mode
 * (larval_drop=1) for every case; the hold queue's (larval_drop=0) in
 * `full` only, where every case runs in every mode.  Returns whether the
 * row runs.
 */
export function patchedCompatRowRuns(modeId: string, env: NodeJS.ProcessEnv = process.env): boolean {
	return tierOf(env) === 'full' || modeId !== 'larval_drop=0';
}
