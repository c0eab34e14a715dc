import { createHash } from 'node:crypto';

/**
 * A cache key over named parts: each part's name and content are length-
 * prefixed so that moving bytes from one part to the next changes the key.
 */
export function cacheKey(parts: ReadonlyArray<readonly [string, string | Uint8Array]>): string {
	const h = createHash('sha256');
	for (const [name, value] of parts) {
		const bytes = typeof value === 'string' ? Buffer.from(value) : value;
		h.update(`${name.length}:${name}:${bytes.length}:`);
		h.update(bytes);
	}
	return h.digest('hex').slice(0, 16);
}
