
/**
 * An entry of a newc ("070701") cpio archive, the format the kernel unpacks
 * as an initramfs.  Writing it ourselves means no cpio binary, no fakeroot
 * and no root: every file is owned by root in the archive whoever builds it.
 */
export type CpioEntry =
	| { kind: 'file'; path: string; mode: number; data: Uint8Array }
	| { kind: 'dir'; path: string; mode: number }
	| { kind: 'symlink'; path: string; target: string };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
	return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
	return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, nlink: number, size: number, name: string): Buffer {
	const nameBytes = Buffer.from(`${name}\0`);
	const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameBytes.length, 0];
	const h = Buffer.from(`070701${fields.map(hex8).join('')}`, 'latin1');
	return Buffer.concat([h, nameBytes, Buffer.alloc(pad4(h.length + nameBytes.length))]);
}

/**
 * Serialises entries in order (parents must come before children; the
 * kernel does not create missing directories).  mtime is 0 so equal inputs
 * give byte-identical archives.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
	const parts: Buffer[] = [];
	let ino = 1;
	for (const e of entries) {
		const name = e.path.replace(/^\/+/, '');
		if (!name) throw new Error('cpio: empty path');
		let mode: number;
		let data: Uint8Array;
		switch (e.kind) {
			case 'file':
				mode = S_IFREG | (e.mode & 0o7777);
				data = e.data;
				break;
			case 'dir':
				mode = S_IFDIR | (e.mode & 0o7777);
				data = new Uint8Array();
				break;
			case 'symlink':
				mode = S_IFLNK | 0o777;
				data = Buffer.from(e.target);
				break;
		}
		parts.push(header(ino++, mode, e.kind === 'dir' ? 2 : 1, data.length, name));
		parts.push(Buffer.from(data), Buffer.alloc(pad4(data.length)));
	}
	parts.push(header(0, 0, 1, 0, 'TRAILER!!!'));
	return Buffer.concat(parts);
}

/** Adds the directory entries every path needs, parents first, once each. */
export function withParentDirs(entries: readonly CpioEntry[]): CpioEntry[] {
	const dirs = new Set<string>();
	const out: CpioEntry[] = [];
	for (const e of entries) {
		const parts = e.path.replace(/^\/+/, '').split('/');
		for (let i = 1; i < parts.length; i++) {
			const d = parts.slice(0, i).join('/');
			if (!dirs.has(d)) {
				dirs.add(d);
				out.push({ kind: 'dir', path: d, mode: 0o755 });
			}
		}
		if (e.kind === 'dir') {
			const d = e.path.replace(/^\/+/, '');
			if (dirs.has(d)) continue;
			dirs.add(d);
		}
		out.push(e);
	}
	return out;
}
