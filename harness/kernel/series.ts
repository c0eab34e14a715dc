import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';

export interface Patch {
	name: string;
	path: string;
	content: string;
}

/**
 * Reads a quilt series file: one patch per line, `#` comments, optional
 * `-pN` after the name (only -p1 is accepted: format-patch output is -p1).
 */
export function parseSeries(text: string): string[] {
	const names: string[] = [];
	for (const raw of text.split('\n')) {
		const line = raw.replace(/#.*/, '').trim();
		if (!line) continue;
		const [name, ...opts] = line.split(/\s+/);
		if (opts.length > 0 && !(opts.length === 1 && opts[0] === '-p1')) {
			throw new LarvalError(`series: unsupported options for ${name}: ${opts.join(' ')}`);
		}
		names.push(name!);
	}
	return names;
}

export function loadSeries(dir: string): Patch[] {
	const seriesPath = join(dir, 'series');
	if (!existsSync(seriesPath)) return [];
	return parseSeries(readFileSync(seriesPath, 'utf8')).map((name) => {
		const path = join(dir, name);
		if (!existsSync(path)) {
			throw new LarvalError(`series names ${name}, but ${path} does not exist`);
		}
		return { name, path, content: readFileSync(path, 'utf8') };
	});
}

// One patch takes well under a second; this only bounds a wedged patch(1).
const PATCH_TIMEOUT_MS = 120_000;

/** Applies patches in order; the first that fails is named, with its rejects. */
export async function applySeries(srcDir: string, patches: readonly Patch[]): Promise<void> {
	for (const p of patches) {
		const r = await execa('patch', ['-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-i', p.path], {
			cwd: srcDir,
			reject: false,
			all: true,
			timeout: PATCH_TIMEOUT_MS,
			stdin: 'ignore',
		});
		if (r.timedOut) throw new LarvalError(`patch ${p.name} timed out after ${PATCH_TIMEOUT_MS / 1000} s in ${srcDir}`, r.all);
		if (r.exitCode !== 0) {
			throw new LarvalError(`patch ${p.name} does not apply to ${srcDir}`, r.all);
		}
	}
}
