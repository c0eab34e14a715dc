import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { cacheRoot } from '../util/paths.js';
import { progress } from '../util/progress.js';
import type { KernelLine } from './line.js';

/**
 * What the guest needs as modules on Debian's cloud kernel, which builds
 * IPsec, veth and virtio-net as modules.  Crypto is loaded up front because
 * the guest has no modprobe to answer the kernel's request_module().
 */
export const DISTRO_MODULES = [
	'virtio_net',
	'virtio_rng',
	'veth',
	'dummy',
	'xfrm_user',
	'xfrm_interface',
	'af_key',
	'esp4',
	'esp6',
	'ah4',
	'ah6',
	'gcm',
	'ghash_generic',
	'seqiv',
	'echainiv',
	'authenc',
	// --firewall stateful: nftables with conntrack (nft_ct pulls nf_conntrack in)
	'nf_tables',
	'nft_ct',
];

export interface DistroKernel {
	packageName: string;
	release: string;
	bzImage: string;
	/** The unpacked package root; modules are under lib/modules/RELEASE. */
	root: string;
}

/** Compares Debian-ish dotted versions numerically, field by field. */
export function compareVersions(a: string, b: string): number {
	const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
	const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
	for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
		const d = (pa[i] ?? -1) - (pb[i] ?? -1);
		if (d) return d;
	}
	return 0;
}

/** The newest of the line's Debian cloud kernel packages among apt's candidates. */
export function newestCloudKernel(pkgnames: readonly string[], line: Pick<KernelLine, 'distroPackage'>): string | undefined {
	return pkgnames
		.filter((n) => line.distroPackage.test(n))
		.sort(compareVersions)
		.at(-1);
}

async function pickPackage(line: KernelLine): Promise<string> {
	// The override names one package, so it is the line's whose prefix it has.
	const override = process.env.LARVAL_DISTRO_PACKAGE;
	if (override?.startsWith(`${line.distroPrefix}.`)) return override;
	const r = await execa('apt-cache', ['pkgnames', line.distroPrefix], { reject: false });
	const name = newestCloudKernel(r.stdout.split('\n'), line);
	if (!name) {
		throw new LarvalError(
			`no ${line.distroPrefix}.*-cloud-amd64 package known to apt: run \`make deps\` ` +
				`(it runs apt-get update${line.role === 'mainline' ? ' and adds trixie-backports' : ''}), or set LARVAL_DISTRO_PACKAGE`,
		);
	}
	return name;
}

/**
 * The packages that hold what @image's name promises.  Debian 12's
 * linux-image-*-unsigned holds the kernel and its modules itself; from
 * trixie on, linux-image-* is a small package that depends on
 * linux-binary-* (vmlinuz), linux-modules-* and linux-base-* (modules.order,
 * modules.builtin) of the same version: those, from its Depends.
 */
export function splitImagePackages(image: string, depends: string): string[] {
	const flavour = image.replace(/^linux-image-/, '').replace(/-unsigned$/, '');
	const part = new RegExp(`^linux-(binary|modules|base)-${flavour.replace(/[.+]/g, '\\$&')}$`);
	const parts = depends.split(',').map((d) => d.trim().split(/\s/)[0]!).filter((d) => part.test(d));
	return [...new Set(parts)];
}

/**
 * Fetches and unpacks Debian's prebuilt cloud kernel (no root needed: apt-get
 * download and dpkg-deb -x), and runs depmod on the unpacked tree so the
 * image builder can resolve module dependencies.
 */
export async function fetchDistroKernel(line: KernelLine): Promise<DistroKernel> {
	const packageName = await pickPackage(line);
	const dir = join(cacheRoot(), 'distro', packageName);
	const metaPath = join(dir, 'kernel.json');
	mkdirSync(join(cacheRoot(), 'distro'), { recursive: true });
	return withLock(dir, 10 * 60_000, async () => {
		if (existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as DistroKernel;
		rmSync(dir, { recursive: true, force: true });
		mkdirSync(dir, { recursive: true });
		progress(`distro kernel: apt-get download ${packageName}`);
		const dl = await execa('apt-get', ['download', packageName], { cwd: dir, reject: false, all: true, timeout: 10 * 60_000 });
		const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
		if (dl.exitCode !== 0 || !deb) throw new LarvalError(`apt-get download ${packageName} failed`, dl.all);
		const depends = (await execa('dpkg-deb', ['-f', join(dir, deb), 'Depends'], { reject: false })).stdout;
		const parts = splitImagePackages(packageName, depends);
		if (parts.length) {
			progress(`distro kernel: apt-get download ${parts.join(' ')}`);
			const more = await execa('apt-get', ['download', ...parts], { cwd: dir, reject: false, all: true, timeout: 10 * 60_000 });
			if (more.exitCode !== 0) throw new LarvalError(`apt-get download ${parts.join(' ')} failed`, more.all);
		}
		const unpacked = join(dir, 'root');
		for (const f of readdirSync(dir).filter((x) => x.endsWith('.deb'))) {
			await execa('dpkg-deb', ['-x', join(dir, f), unpacked]);
			rmSync(join(dir, f));
		}
		// 6.12's package puts modules in /lib/modules, trixie's in /usr/lib/modules (merged /usr).
		const root = existsSync(join(unpacked, 'usr/lib/modules')) ? join(unpacked, 'usr') : unpacked;
		const release = existsSync(join(root, 'lib/modules')) ? readdirSync(join(root, 'lib/modules'))[0] : undefined;
		if (!release) throw new LarvalError(`${packageName} has no lib/modules`);
		const bzImage = [join(unpacked, 'boot', `vmlinuz-${release}`), join(root, 'lib/modules', release, 'vmlinuz')].find((f) => existsSync(f));
		if (!bzImage) throw new LarvalError(`${packageName} (with ${parts.join(', ') || 'nothing else'}) holds no vmlinuz for ${release}`);
		// depmod lives in /usr/sbin, which an unprivileged PATH often lacks.
		const depmod = existsSync('/usr/sbin/depmod') ? '/usr/sbin/depmod' : 'depmod';
		await execa(depmod, ['-b', root, release]);
		const kernel: DistroKernel = { packageName, release, bzImage, root };
		writeFileSync(metaPath, JSON.stringify(kernel, null, '\t'));
		return kernel;
	});
}
