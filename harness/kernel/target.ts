import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LarvalError, UsageError } from '../util/errors.js';
import { readBzImageHeader } from './bzimage.js';
import { buildKernel } from './build.js';
import { DISTRO_MODULES, fetchDistroKernel } from './distro.js';
import { defaultLine, KERNEL_NAMES, parseKernelName } from './line.js';

/** A kernel ready to boot, whatever it came from. */
export interface KernelTarget {
	/** distro, stock, patched (each maybe with its line, as in patched-7.3), or the path the user gave. */
	name: string;
	/** The kernel line of a named kernel (6.12, 7.3); none for a path. */
	line?: string;
	kind: 'distro' | 'built' | 'path';
	bzImage: string;
	release: string;
	/** Distro kernels: where lib/modules/RELEASE is, and what to load. */
	modules?: { root: string; names: readonly string[] };
	/** Config flavour for built kernels (base, debug, ...). */
	config?: string;
	/** Built kernels: the patched source tree (kselftests live there). */
	srcDir?: string;
	buildSeconds?: number;
}

/** Checks a user-given path: a bzImage, or a build tree holding one. */
export function bzImageFromPath(spec: string): string {
	const p = resolve(spec);
	if (!existsSync(p)) {
		throw new UsageError(`kernel ${spec}: no such file or directory (want distro, stock, patched, a bzImage or a build tree)`);
	}
	const file = statSync(p).isDirectory() ? join(p, 'arch/x86/boot/bzImage') : p;
	if (!existsSync(file)) throw new LarvalError(`kernel ${spec}: a directory without arch/x86/boot/bzImage (not built yet?)`);
	if (!readBzImageHeader(file)) throw new UsageError(`kernel ${spec}: ${file} is not an x86 bzImage (no HdrS setup header)`);
	return file;
}

/** Checks a --kernel value before anything is built, fetched or booted: a name, or the path of a bzImage or build tree. */
export function checkKernelSpec(spec: string): void {
	if (parseKernelName(spec)) return;
	if (!spec.includes('/') && !spec.includes('.')) {
		throw new UsageError(`unknown kernel "${spec}": valid are ${KERNEL_NAMES.join(', ')} (a bare name is the ${defaultLine().id} line's), or a path to a bzImage or build tree`);
	}
	bzImageFromPath(spec);
}

export async function resolveKernel(spec: string, opts: { config?: string } = {}): Promise<KernelTarget> {
	const named = parseKernelName(spec);
	if (named?.kind === 'distro') {
		const k = await fetchDistroKernel(named.line);
		const names = DISTRO_MODULES.filter((m) => !named.line.distroModulesGone.includes(m));
		return { name: spec, line: named.line.id, kind: 'distro', bzImage: k.bzImage, release: k.release, modules: { root: k.root, names } };
	}
	if (named) {
		const k = await buildKernel({ variant: named.kind, line: named.line, config: opts.config });
		return { name: spec, line: named.line.id, kind: 'built', bzImage: k.bzImage, release: k.release, config: k.config, buildSeconds: k.buildSeconds, srcDir: join(k.dir, 'src') };
	}
	checkKernelSpec(spec);
	const bzImage = bzImageFromPath(spec);
	return { name: spec, kind: 'path', bzImage, release: readBzImageHeader(bzImage)!.release };
}
