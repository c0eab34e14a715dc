import { closeSync, openSync, readSync } from 'node:fs';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';

/**
 * Where a built kernel branches on a static key: the functions holding a
 * jump-label site of it, read from vmlinux's __jump_table (x86-64,
 * CONFIG_JUMP_LABEL with relative entries: s32 code, s32 target and a
 * 64-bit key, each relative to its own field; the key's low two bits are
 * flags).  A site is a 5-byte NOP while the key is off: the series' claim
 * that its switch off adds no instruction to a hot path (0019) is that
 * every test of its code there is such a site.
 */
export interface StaticKeySites {
	key: string;
	keyAddress: bigint;
	/** Functions (symbol names) with at least one site of the key, sorted. */
	functions: string[];
	sites: number;
}

const ENTRY = 16;

interface Sym { addr: bigint; type: string; name: string }

/** Every symbol of @vmlinux, by address: one nm run serves the key, the jump table's bounds and the functions. */
async function symbols(vmlinux: string): Promise<Sym[]> {
	const r = await execa('nm', ['-n', vmlinux], { reject: false, timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
	if (r.exitCode !== 0) throw new LarvalError(`nm ${vmlinux} failed`, r.stderr);
	return r.stdout.split('\n').flatMap((l) => {
		const [a, type, name] = l.trim().split(/\s+/);
		return a && type && name && /^[0-9a-f]+$/.test(a) ? [{ addr: BigInt(`0x${a}`), type, name }] : [];
	});
}

const addressOf = (syms: readonly Sym[], name: string): bigint | null => syms.find((x) => x.name === name)?.addr ?? null;

/**
 * The jump table, between __start___jump_table and __stop___jump_table:
 * vmlinux keeps it inside a data section (JUMP_TABLE_DATA), not in one of
 * its own, so its bytes are read at the file offset of that section.
 */
async function jumpTable(vmlinux: string, syms: readonly Sym[]): Promise<{ addr: bigint; data: Buffer }> {
	const start = addressOf(syms, '__start___jump_table');
	const stop = addressOf(syms, '__stop___jump_table');
	if (start === null || stop === null) throw new LarvalError(`${vmlinux} has no jump table: built without CONFIG_JUMP_LABEL, so every static key is a load and a test`);
	const sec = await execa('readelf', ['-S', '-W', vmlinux], { reject: false, timeout: 60_000 });
	// [Nr] Name Type Address Off Size ...
	const holder = sec.stdout.split('\n').map((l) => /\]\s+(\S+)\s+\S+\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(l)).find((m) => {
		if (!m) return false;
		const a = BigInt(`0x${m[2]}`);
		return a <= start && stop <= a + BigInt(`0x${m[4]}`);
	});
	if (!holder) throw new LarvalError(`no section of ${vmlinux} holds its jump table`);
	const fileOffset = Number(BigInt(`0x${holder[3]}`) + (start - BigInt(`0x${holder[2]}`)));
	const data = Buffer.alloc(Number(stop - start));
	const fd = openSync(vmlinux, 'r');
	try {
		readSync(fd, data, 0, data.length, fileOffset);
	} finally {
		closeSync(fd);
	}
	return { addr: start, data };
}

/** The function holding @addr: the last symbol at or before it. */
function functionAt(syms: readonly Sym[], addr: bigint): string {
	let lo = 0;
	let hi = syms.length - 1;
	let hit = '?';
	while (lo <= hi) {
		const mid = (lo + hi) >> 1;
		if (syms[mid]!.addr <= addr) {
			hit = syms[mid]!.name;
			lo = mid + 1;
		} else hi = mid - 1;
	}
	return hit;
}

export async function staticKeySites(vmlinux: string, key: string): Promise<StaticKeySites> {
	const syms = await symbols(vmlinux);
	const keyAddr = addressOf(syms, key);
	if (keyAddr === null) throw new LarvalError(`${vmlinux} has no symbol ${key}: not the series, or CONFIG_XFRM off`);
	const jt = await jumpTable(vmlinux, syms);
	const text = syms.filter((x) => /^[tTwW]$/.test(x.type));
	const functions = new Set<string>();
	let sites = 0;
	for (let off = 0; off + ENTRY <= jt.data.length; off += ENTRY) {
		const entry = jt.addr + BigInt(off);
		const code = entry + BigInt(jt.data.readInt32LE(off));
		const k = (entry + 8n + jt.data.readBigInt64LE(off + 8)) & ~3n;
		if (k !== keyAddr) continue;
		sites++;
		functions.add(functionAt(text, code));
	}
	return { key, keyAddress: keyAddr, functions: [...functions].sort(), sites };
}
