/** Quotes words for a POSIX shell (the guest's busybox sh, or ssh's). */
export function shellJoin(words: readonly string[]): string {
	return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}
