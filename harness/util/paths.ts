import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

/** The repository root, found from this file whether run from source or dist/. */
export const repoRoot: string = (() => {
	let dir = dirname(fileURLToPath(import.meta.url));
	while (!existsSync(join(dir, 'package.json'))) {
		const up = dirname(dir);
		if (up === dir) throw new Error('larval: cannot find the repository root');
		dir = up;
	}
	return dir;
})();

/**
 * Kernel trees, images and downloads live outside the clone so that a fresh
 * clone on a machine that already built a kernel reuses it (the cache keys
 * make that safe).  LARVAL_CACHE moves it.
 */
export function cacheRoot(): string {
	if (process.env.LARVAL_CACHE) return resolve(process.env.LARVAL_CACHE);
	const xdg = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
	return join(xdg, 'larval');
}

/** Where runs keep console logs and reports; inside the clone, ignored by git. */
export function resultsRoot(): string {
	return resolve(process.env.LARVAL_RESULTS ?? join(repoRoot, 'results'));
}

export const kernelPatchesDir = join(repoRoot, 'kernel-patches');
export const vmImagesDir = join(repoRoot, 'vm-images');

/**
 * @name as one path component: a kernel named by its bzImage's path
 * (`--kernel /x/arch/x86/boot/bzImage`) would otherwise make directories
 * of its slashes under results/.
 */
export function pathComponent(name: string): string {
	return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}
