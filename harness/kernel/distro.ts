import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { cacheRoot } from '../util/paths.js';
import { progress } from '../util/progress.js';

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

/** The newest Debian 6.12 cloud kernel package name among apt's candidates. */
export function newestCloudKernel(pkgnames: readonly string[]): string | undefined {
	return pkgnames
		.filter((n) => /^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64-unsigned$/.test(n))
		.sort(compareVersions)
		.at(-1);
}

async function pickPackage(): Promise<string> {
	if (process.env.LARVAL_DISTRO_PACKAGE) return process.env.LARVAL_DISTRO_PACKAGE;
	const r = await execa('apt-cache', ['pkgnames', 'linux-image-6.12'], { reject: false });
	const name = newestCloudKernel(r.stdout.split('\n'));
	if (!name) {
		throw new LarvalError(
			'no linux-image-6.12.*-cloud-amd64-unsigned package known to apt: run `make deps` ' +
				'(it runs apt-get update), or set LARVAL_DISTRO_PACKAGE',
		);
	}
	return name;
}

/**
 * Fetches and unpacks Debian's prebuilt cloud kernel (no root needed: apt-get
 * download and dpkg-deb -x), and runs depmod on the unpacked tree so the
 * image builder can resolve module dependencies.
 */
export async function fetchDistroKernel(): Promise<DistroKernel> {
	const packageName = await pickPackage();
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
		const root = join(dir, 'root');
		await execa('dpkg-deb', ['-x', join(dir, deb), root]);
		rmSync(join(dir, deb));
		const release = readdirSync(join(root, 'lib/modules'))[0];
		if (!release) throw new LarvalError(`${packageName} has no lib/modules`);
		const bzImage = join(root, 'boot', `vmlinuz-${release}`);
		// depmod lives in /usr/sbin, which an unprivileged PATH often lacks.
		const depmod = existsSync('/usr/sbin/depmod') ? '/usr/sbin/depmod' : 'depmod';
		await execa(depmod, ['-b', root, release]);
		const kernel: DistroKernel = { packageName, release, bzImage, root };
		writeFileSync(metaPath, JSON.stringify(kernel, null, '\t'));
		return kernel;
	});
}
