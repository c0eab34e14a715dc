import { join } from 'node:path';
import { UsageError } from '../util/errors.js';
import { kernelPatchesDir } from '../util/paths.js';

/**
 * A kernel line: one Debian kernel source package, the series made for it,
 * and Debian's own cloud kernel of the same version.  Two lines exist:
 * mainline (Linux 7.3, from trixie-backports) and the 6.12 backport.
 *
 * A kernel name says its line: `stock-7.3`, `patched-7.3`, `distro-7.3`,
 * `stock-6.12` and so on; a bare `stock`, `patched` or `distro` is the
 * default line's (LARVAL_LINE, else 6.12).  The default is still 6.12:
 * `make test` and CI's budget were sized on it, and moving them is issue
 * #16's next step.
 */
export interface KernelLine {
	id: '6.12' | '7.3';
	/** What the README and the tables call it. */
	role: 'mainline' | 'backport';
	sourcePackage: string;
	tarball: string;
	/** The quilt series and its patches. */
	seriesDir: string;
	/** The prefix `apt-cache pkgnames` is asked for, and the cloud kernel's name among its answers. */
	distroPrefix: string;
	distroPackage: RegExp;
	/**
	 * Options of kernel-patches/config/*.config that this line's Kconfig
	 * folded into another, with that other: asked for and absent is not a
	 * dropped option when the other is set (7.3 made PROC_SYSCTL part of
	 * SYSCTL).
	 */
	folded: Readonly<Record<string, string>>;
	/**
	 * Modules of DISTRO_MODULES this line's Debian kernel does not have,
	 * because what they did moved elsewhere (7.3: GHASH is the built-in
	 * libgf128hash library that gcm calls, no ghash_generic module).
	 */
	distroModulesGone: readonly string[];
	/**
	 * The cache directory's infix.  Empty for 6.12, so that every build
	 * cached before lines existed (and CI's cache) is still found.
	 */
	cacheInfix: string;
}

export const LINES: Readonly<Record<KernelLine['id'], KernelLine>> = {
	'7.3': {
		id: '7.3',
		role: 'mainline',
		sourcePackage: 'linux-source-7.3',
		tarball: '/usr/src/linux-source-7.3.tar.xz',
		seriesDir: join(kernelPatchesDir, 'mainline-7.3'),
		distroPrefix: 'linux-image-7.3',
		distroPackage: /^linux-image-7\.3\.[0-9]+\+deb[0-9]+-cloud-amd64$/,
		folded: { CONFIG_PROC_SYSCTL: 'CONFIG_SYSCTL' },
		distroModulesGone: ['ghash_generic'],
		cacheInfix: '7.3-',
	},
	'6.12': {
		id: '6.12',
		role: 'backport',
		sourcePackage: 'linux-source-6.12',
		tarball: '/usr/src/linux-source-6.12.tar.xz',
		seriesDir: kernelPatchesDir,
		distroPrefix: 'linux-image-6.12',
		distroPackage: /^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64-unsigned$/,
		folded: {},
		distroModulesGone: [],
		cacheInfix: '',
	},
};

/** The line a bare name means when LARVAL_LINE does not say. */
export const DEFAULT_LINE: KernelLine['id'] = '6.12';

/**
 * The line bare names mean: LARVAL_LINE (`make test-mainline` sets 7.3,
 * so that every suite runs on mainline unchanged), else DEFAULT_LINE.
 */
export function defaultLine(env: NodeJS.ProcessEnv = process.env): KernelLine {
	const id = env.LARVAL_LINE;
	if (!id) return LINES[DEFAULT_LINE];
	try {
		return lineOf(id);
	} catch (e) {
		throw new UsageError(`LARVAL_LINE=${id}: ${(e as Error).message}`);
	}
}

export const KERNEL_KINDS = ['distro', 'stock', 'patched'] as const;
export type KernelKind = (typeof KERNEL_KINDS)[number];

/** Every name a kernel can be given: the bare ones (default line), then each line's. */
export const KERNEL_NAMES: readonly string[] = [
	...KERNEL_KINDS,
	...Object.keys(LINES).flatMap((id) => KERNEL_KINDS.map((k) => `${k}-${id}`)),
];

export function lineOf(id: string): KernelLine {
	const line = Object.hasOwn(LINES, id) ? (LINES as Record<string, KernelLine>)[id] : undefined;
	if (!line) throw new UsageError(`unknown kernel line "${id}": the lines are ${Object.keys(LINES).join(', ')}`);
	return line;
}

/**
 * `patched-7.3` as kind and line; undefined for what is not a kernel name
 * (a path).  A name with an unknown line (`stock-5.10`) is a usage error
 * that names the lines there are.
 */
const LINE_NAME = new RegExp(`^(${KERNEL_KINDS.join('|')})-(\\d+\\.\\d+)$`);

export function parseKernelName(spec: string): { kind: KernelKind; line: KernelLine } | undefined {
	if ((KERNEL_KINDS as readonly string[]).includes(spec)) return { kind: spec as KernelKind, line: defaultLine() };
	const m = LINE_NAME.exec(spec);
	if (!m) return undefined;
	return { kind: m[1] as KernelKind, line: lineOf(m[2]!) };
}
