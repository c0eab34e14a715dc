import { UsageError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import type { Leak } from '../vm/kmemleak.js';
import type { TapStream } from '../probe/tap.js';
import type { ProgramEnd } from './program-run.js';

/**
 * The pure half of `larval fuzz`: the guest network the fuzzer runs in, its
 * command line, what its TAP summary says, and what fails a run.  The other
 * half (booting, running, scanning) is fuzz.ts.
 */

/** Two namespaces over a veth pair (addresses from RFC 5737 / RFC 3849). */
export const FUZZ_NAMESPACES = [
	{ name: 'fz0', dev: 'fz0a', mac: '02:00:00:00:f0:0a', v4: '192.0.2.1', v6: '2001:db8:1::1' },
	{ name: 'fz1', dev: 'fz1b', mac: '02:00:00:00:f0:0b', v4: '192.0.2.2', v6: '2001:db8:1::2' },
] as const;

/** Routed from each namespace to the other, where nobody owns them. */
const FAR_PREFIXES = { 4: ['203.0.113.0/24', '198.51.100.0/24'], 6: ['2001:db8:3::/64', '2001:db8:2::/64'] } as const;

/** Far addresses: packets to them leave over the veth and die on the other side, but each one is an acquire of its own. */
export const FUZZ_PEERS = ['203.0.113.1', '203.0.113.2', '198.51.100.1', '198.51.100.2', '2001:db8:3::1', '2001:db8:3::2', '2001:db8:2::1', '2001:db8:2::2'];

export const FUZZ_DIR = '/run/larval/fuzz';

/** Shell lines that build the fuzzer's network in a fresh guest. */
export function fuzzNetworkSetup(): string[] {
	const [a, b] = FUZZ_NAMESPACES;
	const ip = (ns: string, ...args: string[]) => shellJoin(['ip', '-n', ns, ...args]);
	const lines = [`mkdir -p ${FUZZ_DIR}`];
	for (const n of FUZZ_NAMESPACES) {
		lines.push(
			shellJoin(['ip', 'netns', 'add', n.name]),
			ip(n.name, 'link', 'set', 'lo', 'up'),
			// Ping sockets are off by default in a namespace.
			shellJoin(['ip', 'netns', 'exec', n.name, 'sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']),
		);
	}
	lines.push(ip(a.name, 'link', 'add', a.dev, 'address', a.mac, 'type', 'veth', 'peer', 'name', b.dev, 'address', b.mac, 'netns', b.name));
	for (const [me, peer] of [[a, b], [b, a]] as const) {
		lines.push(
			ip(me.name, 'addr', 'add', `${me.v4}/24`, 'dev', me.dev),
			ip(me.name, '-6', 'addr', 'add', `${me.v6}/64`, 'dev', me.dev, 'nodad'),
			ip(me.name, 'link', 'set', me.dev, 'up'),
			// Static neighbours: no ARP or NDISC whose own packets would meet the wide policies before anything else does.
			ip(me.name, 'neigh', 'replace', peer.v4, 'lladdr', peer.mac, 'dev', me.dev, 'nud', 'permanent'),
			ip(me.name, '-6', 'neigh', 'replace', peer.v6, 'lladdr', peer.mac, 'dev', me.dev, 'nud', 'permanent'),
			...FAR_PREFIXES[4].map((p) => ip(me.name, 'route', 'add', p, 'via', peer.v4)),
			...FAR_PREFIXES[6].map((p) => ip(me.name, '-6', 'route', 'add', p, 'via', peer.v6)),
		);
	}
	return lines;
}

export interface FuzzArgs {
	seed: number;
	seconds: number;
	overrunMs: number;
}

export function fuzzCommand(a: FuzzArgs): string[] {
	return [
		'larval-fuzz',
		...FUZZ_NAMESPACES.flatMap((n) => ['--ns', `/run/netns/${n.name},${n.v4},${n.v6}`]),
		...FUZZ_PEERS.flatMap((p) => ['--peer', p]),
		'--seed', String(a.seed),
		'--seconds', String(a.seconds),
		'--overrun-ms', String(a.overrunMs),
		'--trace', `${FUZZ_DIR}/trace`,
	];
}

/** Seeds are what larval-fuzz reads with strtoull and what a JS number holds exactly. */
export function parseSeed(s: string): number {
	if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UsageError(`--seed must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, not "${s}"`);
	return Number(s);
}

/** The command that reruns a fuzzing run; @cpus when the run chose them (the same seed on other vCPUs interleaves differently). */
export function reproduceCommand(kernel: { name: string; config?: string }, seed: number, minutes: number, cpus?: number): string {
	const config = kernel.config && kernel.config !== 'base' ? ['--config', kernel.config] : [];
	const machine = cpus === undefined ? [] : ['--cpus', String(cpus)];
	return shellJoin(['larval', 'fuzz', '--kernel', kernel.name, ...config, ...machine, '--seed', String(seed), '--minutes', String(minutes)]);
}

export interface KindCount {
	ops: number;
	fails: number;
	/** The refusals by errno name: which paths the calls reached. */
	errnos: Record<string, number>;
}

/** "EAGAIN=12 EINPROGRESS=4" as { EAGAIN: 12, EINPROGRESS: 4 }. */
export function parseErrnos(s: unknown): Record<string, number> {
	const out: Record<string, number> = {};
	for (const m of String(s ?? '').matchAll(/([A-Z?0-9a-z]+)=(\d+)/g)) out[m[1]!] = Number(m[2]);
	return out;
}

export interface FuzzSummary {
	seed: string;
	ops: number;
	elapsedMs: number;
	/** Per kind of operation (policy_add, connect, acquire, ...): calls made and how many the kernel refused. */
	kinds: Record<string, KindCount>;
	overruns: string[];
	result: string;
	/** The last operations, oldest first. */
	lastOps: string[];
}

/**
 * Reads larval-fuzz's summary point ("ops_<kind>: N", "fails_<kind>: N")
 * and its overrun point.  Null when the run never got that far.
 */
export function parseFuzzSummary(tap: TapStream): FuzzSummary | null {
	const point = tap.points.find((p) => p.name === 'summary');
	if (!point) return null;
	const d = point.diag;
	const kinds: Record<string, KindCount> = {};
	for (const [k, v] of Object.entries(d)) {
		const m = /^ops_(\w+)$/.exec(k);
		if (m) kinds[m[1]!] = { ops: Number(v), fails: Number(d[`fails_${m[1]}`] ?? 0), errnos: parseErrnos(d[`errnos_${m[1]}`]) };
	}
	const over = tap.points.find((p) => p.name === 'no call overran its bound')?.diag ?? {};
	return {
		// The seed may exceed 2^53 when typed by hand: keep its digits.
		seed: String(d.seed ?? ''),
		ops: Number(d.ops ?? 0),
		elapsedMs: Number(d.elapsed_ms ?? 0),
		kinds,
		overruns: Object.keys(over).filter((k) => /^overrun_\d+$/.test(k)).map((k) => String(over[k])),
		result: String(d.result ?? ''),
		lastOps: tap.comments.filter((c) => c.startsWith('last ')).map((c) => c.slice(5)),
	};
}

/** Kinds whose count is below its floor: a fuzzer that stopped doing one thing must not pass quietly. */
export function kindsBelow(s: FuzzSummary, floors: Readonly<Record<string, number>>): string[] {
	return Object.entries(floors).filter(([k, min]) => (s.kinds[k]?.ops ?? 0) < min).map(([k, min]) => `${k}: ${s.kinds[k]?.ops ?? 0} < ${min}`);
}

export type FuzzVerdictInput = ProgramEnd & {
	seed: number;
	reproduce: string;
	leaks: readonly Leak[] | null;
};

/** What fails a run; each line names the seed, so a pasted line is enough to rerun it. */
export function fuzzProblems(r: FuzzVerdictInput): string[] {
	const tag = `seed ${r.seed}`;
	const out: string[] = [];
	if (r.hang) out.push(`${tag}: hang: ${r.hang}`);
	if (r.died) out.push(`${tag}: ${r.died}`);
	for (const f of r.findings) out.push(`${tag}: kernel ${f.kind} at console line ${f.line}: ${f.text}`);
	if (!r.hang && !r.died) {
		if (r.tap.bailout !== null) out.push(`${tag}: larval-fuzz bailed out: ${r.tap.bailout}`);
		else if (!r.tap.complete) out.push(`${tag}: larval-fuzz output incomplete (exit status ${r.exitStatus ?? 'none'})${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
		for (const p of r.tap.points.filter((x) => !x.ok)) out.push(`${tag}: larval-fuzz: not ok: ${p.name}`);
		if (r.tap.complete && r.exitStatus !== 0) out.push(`${tag}: larval-fuzz exited ${r.exitStatus}`);
	}
	for (const l of r.leaks ?? []) out.push(`${tag}: kmemleak: ${l.size} bytes from ${l.comm}: ${l.backtrace.slice(0, 6).join(' < ')}`);
	if (out.length) out.push(`reproduce: ${r.reproduce}`);
	return out;
}
