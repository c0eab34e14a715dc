import { describe, expect, it } from 'vitest';
import { droppedOptions, parseConfig } from '../../harness/kernel/config.js';
import { parseSeries } from '../../harness/kernel/series.js';
import { parseBzImageHeader } from '../../harness/kernel/bzimage.js';
import { moduleLoadOrder, moduleName, parseModulesDep } from '../../harness/kernel/modules.js';
import { compareVersions, newestCloudKernel, splitImagePackages } from '../../harness/kernel/distro.js';
import { LINES } from '../../harness/kernel/line.js';
import { parseLdd } from '../../harness/image/shared-libs.js';
import { cacheKey } from '../../harness/util/hash.js';

describe('series files', () => {
	it('reads names, skips comments and blank lines, accepts -p1', () => {
		expect(parseSeries('# larval\n0001-a.patch\n\n0002-b.patch -p1 # why\n')).toEqual(['0001-a.patch', '0002-b.patch']);
	});
	it('rejects options quilt would apply differently', () => {
		expect(() => parseSeries('0001-a.patch -p0\n')).toThrow(/unsupported/);
	});
});

describe('config fragments', () => {
	it('parses set and unset options', () => {
		const c = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=-1\n# comment\n');
		expect([...c]).toEqual([['CONFIG_A', 'y'], ['CONFIG_B', 'n'], ['CONFIG_C', '"x y"'], ['CONFIG_D', '-1']]);
	});
	it('reports options Kconfig dropped or changed', () => {
		const wanted = parseConfig('CONFIG_A=y\nCONFIG_B=y\nCONFIG_PANIC_TIMEOUT=-1\n');
		const got = parseConfig('CONFIG_A=y\nCONFIG_PANIC_TIMEOUT=0\n');
		expect(droppedOptions(wanted, got).map((d) => d.name)).toEqual(['CONFIG_B', 'CONFIG_PANIC_TIMEOUT']);
	});
	it("accepts an option the tree's Kconfig folded into one that is set, and only that", () => {
		const wanted = parseConfig('CONFIG_PROC_SYSCTL=y\nCONFIG_XFRM_USER=y\n');
		const got = parseConfig('CONFIG_SYSCTL=y\n');
		expect(droppedOptions(wanted, got, LINES['7.3'].folded).map((d) => d.name)).toEqual(['CONFIG_XFRM_USER']);
		expect(droppedOptions(wanted, got).map((d) => d.name)).toEqual(['CONFIG_PROC_SYSCTL', 'CONFIG_XFRM_USER']);
		expect(droppedOptions(wanted, parseConfig('# CONFIG_SYSCTL is not set\n'), LINES['7.3'].folded).map((d) => d.name)).toEqual(['CONFIG_PROC_SYSCTL', 'CONFIG_XFRM_USER']);
	});
});

describe('bzImage header', () => {
	it('reads the version string the setup header points at', () => {
		const buf = Buffer.alloc(0x800);
		buf.write('HdrS', 0x202, 'latin1');
		buf.writeUInt16LE(0x400, 0x20e);
		buf.write('6.12.117 (larval@larval) #1 SMP\0', 0x600, 'latin1');
		expect(parseBzImageHeader(buf)).toEqual({ version: '6.12.117 (larval@larval) #1 SMP', release: '6.12.117' });
	});
	it('returns null for a file that is not a bzImage', () => {
		expect(parseBzImageHeader(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(0x1000, ' ')))).toBeNull();
	});
});

describe('module load order', () => {
	const dep = parseModulesDep(
		[
			'kernel/net/ipv4/esp4.ko.xz: kernel/net/xfrm/xfrm_algo.ko.xz kernel/crypto/authenc.ko.xz',
			'kernel/net/xfrm/xfrm_algo.ko.xz:',
			'kernel/crypto/authenc.ko.xz: kernel/crypto/crypto_null.ko.xz',
			'kernel/crypto/crypto_null.ko.xz:',
			'kernel/net/xfrm/xfrm_user.ko.xz: kernel/net/xfrm/xfrm_algo.ko.xz',
			'kernel/drivers/net/virtio-net.ko.xz:',
		].join('\n'),
	);
	it('loads dependencies first, each module once', () => {
		const o = moduleLoadOrder(dep, new Set(), ['esp4', 'xfrm_user']);
		expect(o.paths.map(moduleName)).toEqual(['xfrm_algo', 'crypto_null', 'authenc', 'esp4', 'xfrm_user']);
	});
	it("treats '-' and '_' alike, and separates built-in from missing", () => {
		const o = moduleLoadOrder(dep, new Set(['ipv6']), ['virtio_net', 'ipv6', 'nope']);
		expect(o.paths).toEqual(['kernel/drivers/net/virtio-net.ko.xz']);
		expect(o.builtin).toEqual(['ipv6']);
		expect(o.missing).toEqual(['nope']);
	});
});

describe('distro kernel choice', () => {
	it('compares versions numerically', () => {
		expect(compareVersions('6.12.9', '6.12.10')).toBeLessThan(0);
		expect(compareVersions('6.12.117', '6.12.117')).toBe(0);
	});
	it('picks the newest 6.12 cloud unsigned image', () => {
		expect(
			newestCloudKernel([
				'linux-image-6.12.9+deb12-cloud-amd64-unsigned',
				'linux-image-6.12.117+deb12-cloud-amd64-unsigned',
				'linux-image-6.12.113+deb12-cloud-amd64-unsigned',
				'linux-image-6.12.200+deb12-amd64-unsigned',
				'linux-image-6.1.0-57-cloud-amd64-unsigned',
				'linux-image-7.3.4+deb13-cloud-amd64',
			], LINES['6.12']),
		).toBe('linux-image-6.12.117+deb12-cloud-amd64-unsigned');
	});
	it("picks 7.3's cloud image, not its -dbg, -rt or plain amd64 flavours", () => {
		// `apt-cache pkgnames linux-image-7.3` on this machine with trixie-backports, 2026-12-01
		const names = ['linux-image-7.3.4+deb13-amd64', 'linux-image-7.3.4+deb13-amd64-dbg', 'linux-image-7.3.4+deb13-cloud-amd64-dbg', 'linux-image-7.3.4+deb13-cloud-amd64', 'linux-image-7.3.4+deb13-rt-amd64'];
		expect(newestCloudKernel(names, LINES['7.3'])).toBe('linux-image-7.3.4+deb13-cloud-amd64');
		expect(newestCloudKernel(names, LINES['6.12'])).toBeUndefined();
	});
	it("takes trixie's split image packages from the image's Depends, and none for 6.12's", () => {
		// dpkg-deb -f linux-image-7.3.4+deb13-cloud-amd64_7.3.4-1~bpo13+1_amd64.deb Depends
		const depends = 'dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1)';
		expect(splitImagePackages('linux-image-7.3.4+deb13-cloud-amd64', depends)).toEqual([
			'linux-base-7.3.4+deb13-cloud-amd64',
			'linux-binary-7.3.4+deb13-cloud-amd64',
			'linux-modules-7.3.4+deb13-cloud-amd64',
		]);
		expect(splitImagePackages('linux-image-6.12.117+deb12-cloud-amd64-unsigned', 'kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool')).toEqual([]);
	});
});

describe('ldd output', () => {
	it('lists the libraries and the loader', () => {
		const out = [
			'\tlinux-vdso.so.1 (0x00007ffd)',
			'\tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007f)',
			'\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)',
			'\t/lib64/ld-linux-x86-64.so.2 (0x00007f)',
		].join('\n');
		expect(parseLdd(out)).toEqual(['/lib/x86_64-linux-gnu/libbpf.so.1', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
	});
	it('fails loudly on a missing library', () => {
		expect(() => parseLdd('\tlibfoo.so.1 => not found\n')).toThrow(/libfoo/);
	});
});

describe('cache keys', () => {
	it('change when content moves between parts', () => {
		expect(cacheKey([['a', 'xy'], ['b', '']])).not.toBe(cacheKey([['a', 'x'], ['b', 'y']]));
		expect(cacheKey([['a', 'x']])).toBe(cacheKey([['a', 'x']]));
	});
});
