import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Reads the version string an x86 bzImage carries in its setup header
 * (Documentation/arch/x86/boot.rst: "HdrS" at 0x202, kernel_version at
 * 0x20e, relative to 0x200).  Returns null for anything else, which is how
 * a wrong path is caught before QEMU prints something cryptic.
 */
export function parseBzImageHeader(head: Uint8Array): { version: string; release: string } | null {
	const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
	if (buf.length < 0x210 || buf.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
	const ptr = buf.readUInt16LE(0x20e) + 0x200;
	if (ptr >= buf.length) return null;
	const end = buf.indexOf(0, ptr);
	const version = buf.toString('latin1', ptr, end < 0 ? Math.min(buf.length, ptr + 256) : end);
	return { version, release: version.split(' ')[0] ?? '' };
}

export function readBzImageHeader(path: string): { version: string; release: string } | null {
	const fd = openSync(path, 'r');
	try {
		const head = Buffer.alloc(0x4000);
		const n = readSync(fd, head, 0, head.length, 0);
		return parseBzImageHeader(head.subarray(0, n));
	} finally {
		closeSync(fd);
	}
}
