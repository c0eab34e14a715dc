import type { Vm } from './vm.js';

/** One object kmemleak reports as unreferenced, with the allocation's backtrace. */
export interface Leak {
	object: string;
	size: number;
	comm: string;
	backtrace: string[];
}

const KMEMLEAK = '/sys/kernel/debug/kmemleak';

/** Parses /sys/kernel/debug/kmemleak: blocks starting "unreferenced object 0x... (size N):". */
export function parseKmemleak(text: string): Leak[] {
	const leaks: Leak[] = [];
	let cur: Leak | null = null;
	let inTrace = false;
	for (const line of text.split('\n')) {
		const head = /^unreferenced object (0x[0-9a-f]+) \(size (\d+)\):/.exec(line);
		if (head) {
			cur = { object: head[1]!, size: Number(head[2]), comm: '', backtrace: [] };
			leaks.push(cur);
			inTrace = false;
			continue;
		}
		if (!cur) continue;
		const comm = /^\s+comm "([^"]*)"/.exec(line);
		if (comm) cur.comm = comm[1]!;
		else if (/^\s+backtrace/.test(line)) inTrace = true;
		else if (inTrace && /^\s+\[<[0-9a-f]+>\]/.test(line)) cur.backtrace.push(line.trim().replace(/^\[<[0-9a-f]+>\]\s*/, ''));
	}
	return leaks;
}

export async function kmemleakAvailable(vm: Vm): Promise<boolean> {
	return (await vm.exec(`test -w ${KMEMLEAK}`, { timeoutMs: 10_000 })).code === 0;
}

/** Forgets what kmemleak knows so far (boot-time objects), so a later scan reports only what came after. */
export async function kmemleakClear(vm: Vm): Promise<void> {
	await vm.run(`echo clear > ${KMEMLEAK}`);
}

/**
 * Scans twice, a few seconds apart (kmemleak reports an object only once it
 * is older than its minimum age and unreferenced in two scans), and returns
 * what it found since the last clear.
 */
export async function kmemleakScan(vm: Vm): Promise<Leak[]> {
	const r = await vm.exec(`echo scan > ${KMEMLEAK} && sleep 6 && echo scan > ${KMEMLEAK} && cat ${KMEMLEAK}`, { timeoutMs: 180_000 });
	if (r.code !== 0) throw new Error(`kmemleak scan failed (status ${r.code}): ${r.stderr.trim()}`);
	return parseKmemleak(r.stdout);
}
