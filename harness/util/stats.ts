/** The median of the finite values, or null when there are none. */
export function median(xs: readonly number[]): number | null {
	const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
	if (!v.length) return null;
	const mid = Math.floor(v.length / 2);
	return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Smallest and largest finite value, or null when there are none. */
export function spread(xs: readonly number[]): { min: number; max: number } | null {
	const v = xs.filter(Number.isFinite);
	return v.length ? { min: Math.min(...v), max: Math.max(...v) } : null;
}
