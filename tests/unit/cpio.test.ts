import { describe, expect, it } from 'vitest';
import { type CpioEntry, withParentDirs, writeCpio } from '../../harness/image/cpio.js';

/** A minimal newc reader, independent of the writer, to check what it wrote. */
function readCpio(buf: Buffer): Array<{ name: string; mode: number; data: Buffer }> {
	const out: Array<{ name: string; mode: number; data: Buffer }> = [];
	let off = 0;
	const align = (n: number) => (n + 3) & ~3;
	for (;;) {
		expect(buf.toString('latin1', off, off + 6)).toBe('070701');
		const field = (i: number) => parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
		const mode = field(1);
		const size = field(6);
		const nameSize = field(11);
		const name = buf.toString('latin1', off + 110, off + 110 + nameSize - 1);
		const dataStart = align(off + 110 + nameSize);
		if (name === 'TRAILER!!!') return out;
		out.push({ name, mode, data: buf.subarray(dataStart, dataStart + size) });
		off = align(dataStart + size);
	}
}

describe('newc cpio writer', () => {
	it('round-trips files, directories and symlinks with their modes', () => {
		const entries: CpioEntry[] = [
			{ kind: 'dir', path: '/etc', mode: 0o755 },
			{ kind: 'file', path: '/etc/passwd', mode: 0o644, data: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
			{ kind: 'file', path: '/odd', mode: 0o600, data: Buffer.from('abc') },
			{ kind: 'symlink', path: '/bin/sh', target: '/bin/busybox' },
		];
		const read = readCpio(writeCpio(entries));
		expect(read.map((e) => e.name)).toEqual(['etc', 'etc/passwd', 'odd', 'bin/sh']);
		expect(read[0]!.mode).toBe(0o040755);
		expect(read[1]!.mode).toBe(0o100644);
		expect(read[1]!.data.toString()).toBe('root:x:0:0::/root:/bin/sh\n');
		expect(read[2]!.data.toString()).toBe('abc');
		expect(read[3]!.mode).toBe(0o120777);
		expect(read[3]!.data.toString()).toBe('/bin/busybox');
	});

	it('is byte-identical for identical input, so images cache by content', () => {
		const e: CpioEntry[] = [{ kind: 'file', path: '/a', mode: 0o755, data: Buffer.from('x') }];
		expect(writeCpio(e).equals(writeCpio(e))).toBe(true);
		expect(readCpio(writeCpio(e))[0]!.name).toBe('a');
	});

	it('adds each parent directory once, before its children, keeping explicit modes', () => {
		const out = withParentDirs([
			{ kind: 'dir', path: '/root', mode: 0o700 },
			{ kind: 'file', path: '/root/.ssh/authorized_keys', mode: 0o600, data: Buffer.from('k') },
			{ kind: 'file', path: '/usr/bin/ip', mode: 0o755, data: Buffer.from('') },
			{ kind: 'file', path: '/usr/bin/x', mode: 0o755, data: Buffer.from('') },
		]);
		expect(out.map((e) => `${e.kind}:${e.path.replace(/^\//, '')}`)).toEqual([
			'dir:root',
			'dir:root/.ssh',
			'file:root/.ssh/authorized_keys',
			'dir:usr',
			'dir:usr/bin',
			'file:usr/bin/ip',
			'file:usr/bin/x',
		]);
		expect(out[0]).toMatchObject({ mode: 0o700 });
	});
});
