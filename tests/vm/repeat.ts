/**
 * How many times each case runs per kernel and mode (LARVAL_REPEAT
 * overrides all).  The series' own rows run 3 times; the stock matrix
 * (distro and stock) and the strongSwan cases twice: with every case
 * three times, `make test` took 58 min with the kernels cached, and a
 * fresh CI machine adds ~25 min of kernel builds to a 90 min budget.
 */
const DEFAULT_REPEAT = { patched: 3, stock: 2, strongswan: 2 } as const;

export function repeatFor(suite: keyof typeof DEFAULT_REPEAT): number {
	return Number(process.env.LARVAL_REPEAT ?? DEFAULT_REPEAT[suite]);
}
