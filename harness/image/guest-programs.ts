import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { cacheKey } from '../util/hash.js';
import { LarvalError } from '../util/errors.js';
import { cacheRoot, vmImagesDir } from '../util/paths.js';
import { progress } from '../util/progress.js';

/** Folders of vm-images/ whose every .c file is one guest program. */
export const PROGRAM_DIRS = ['km', 'probes'];
export const CFLAGS = ['-static', '-O2', '-g', '-Wall', '-Wextra', '-Werror', '-std=gnu11'];

function sources(): { program: string[]; headers: string[] } {
	const program: string[] = [];
	for (const d of PROGRAM_DIRS) {
		const dir = join(vmImagesDir, d);
		if (!existsSync(dir)) continue;
		for (const f of readdirSync(dir).sort()) if (f.endsWith('.c')) program.push(join(dir, f));
	}
	const libDir = join(vmImagesDir, 'lib');
	const headers = existsSync(libDir)
		? readdirSync(libDir).sort().filter((f) => f.endsWith('.h')).map((f) => join(libDir, f))
		: [];
	return { program, headers };
}

/**
 * Compiles one C file statically with the guest programs' flags: the guest
 * has no libc of its own (apart from what `ip` and dropbear bring) and no
 * compiler.  @includeDirs: extra -I directories.
 */
export async function compileStatic(src: string, out: string, includeDirs: readonly string[] = []): Promise<void> {
	const r = await execa('gcc', [...CFLAGS, ...includeDirs.flatMap((d) => ['-I', d]), '-o', out, src], {
		reject: false,
		all: true,
		timeout: 120_000,
	});
	if (r.exitCode !== 0) throw new LarvalError(`compiling ${src} failed`, r.all);
}

/**
 * Compiles the guest programs statically (the guest has no libc of its own
 * apart from what `ip` and dropbear bring), cached by source content.
 * Returns the binaries as guest path -> host path.
 */
export async function buildGuestPrograms(): Promise<Map<string, string>> {
	const { program, headers } = sources();
	const key = cacheKey([
		['cflags', CFLAGS.join(' ')],
		...[...headers, ...program].map((f) => [f.slice(vmImagesDir.length), readFileSync(f)] as const),
	]);
	const outDir = join(cacheRoot(), 'guest-bin', key);
	const out = new Map<string, string>();
	const missing = program.filter((src) => !existsSync(join(outDir, basename(src, '.c'))));
	if (missing.length) {
		mkdirSync(outDir, { recursive: true });
		progress(`guest programs: compiling ${missing.map((m) => basename(m)).join(', ')}`);
	}
	for (const src of missing) {
		const name = basename(src, '.c');
		// Another larval process may compile the same sources at once: its own temporary name each.
		const tmp = join(outDir, `${name}.${process.pid}.tmp`);
		await compileStatic(src, tmp, [join(vmImagesDir, 'lib')]);
		renameSync(tmp, join(outDir, name));
	}
	for (const src of program) {
		const name = basename(src, '.c');
		out.set(`/usr/bin/${name}`, join(outDir, name));
	}
	return out;
}
