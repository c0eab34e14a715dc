import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';

export const SOURCE_PACKAGE = 'linux-source-6.12';
export const SOURCE_TARBALL = `/usr/src/${SOURCE_PACKAGE}.tar.xz`;

export interface KernelSource {
	tarball: string;
	/** Debian package version, e.g. 6.12.117-1~deb12u1: part of every cache key. */
	packageVersion: string;
}

export async function findKernelSource(): Promise<KernelSource> {
	if (!existsSync(SOURCE_TARBALL)) {
		throw new LarvalError(
			`${SOURCE_TARBALL} is missing: install it with \`make deps\` ` +
				`(apt-get install ${SOURCE_PACKAGE})`,
		);
	}
	const r = await execa('dpkg-query', ['-W', '-f=${Version}', SOURCE_PACKAGE], { reject: false });
	// A tarball put there by hand still builds; its key then says so.
	const packageVersion = r.exitCode === 0 && r.stdout ? r.stdout : 'unpackaged';
	return { tarball: SOURCE_TARBALL, packageVersion };
}
