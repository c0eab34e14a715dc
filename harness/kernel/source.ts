import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';
import type { KernelLine } from './line.js';

export interface KernelSource {
	tarball: string;
	/** Debian package version, e.g. 6.12.117-1~deb12u1: part of every cache key. */
	packageVersion: string;
}

export async function findKernelSource(line: KernelLine): Promise<KernelSource> {
	if (!existsSync(line.tarball)) {
		throw new LarvalError(
			`${line.tarball} is missing: install it with \`make deps\` ` +
				`(apt-get install ${line.sourcePackage}${line.role === 'mainline' ? ', from trixie-backports' : ''})`,
		);
	}
	const r = await execa('dpkg-query', ['-W', '-f=${Version}', line.sourcePackage], { reject: false });
	// A tarball put there by hand still builds; its key then says so.
	const packageVersion = r.exitCode === 0 && r.stdout ? r.stdout : 'unpackaged';
	return { tarball: line.tarball, packageVersion };
}
