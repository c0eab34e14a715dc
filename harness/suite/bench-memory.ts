import type { KernelTarget } from '../kernel/target.js';
import { topology } from '../net/topology.js';
import { parseTap } from '../probe/tap.js';
import { textTable } from '../report/table.js';
import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { bootGuest, type GuestOptions, machineOf } from '../vm/guest.js';
import type { GuestMachine } from '../vm/machine.js';
import { RESOLVE_1 } from './cases.js';
import { background, kernelHasResolve, kmArgs, Lab, parseXfrmStat, RUN_DIR, splitSections, sysctlSteps, waitForReady } from './lab.js';
import { num } from './outcome.js';
import { nthPeer, widePolicySteps } from './waiters.js';

/** Issue #7: the memory figures are taken at this many pending acquires. */
export const MEMORY_ENTRIES = 10_000;
/** Datagrams held on the one acquire of the per-packet figure. */
export const MEMORY_PACKETS = 10_000;
/** Payload of every held datagram: what a DNS query or a small RPC sends first. */
export const MEMORY_PAYLOAD = 64;
/** Nothing may expire while the load is built and measured (TCG: seconds, not ms). */
const ACQ_EXPIRES_S = 600;

/** /proc/meminfo in bytes, by field. */
export function parseMeminfo(text: string): Record<string, number> {
	const out: Record<string, number> = {};
	for (const line of text.split('\n')) {
		const m = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
		if (m) out[m[1]!] = Number(m[2]) * (line.includes('kB') ? 1024 : 1);
	}
	return out;
}

/** One load: how much of what the kernel keeps grew, and for how many acquires and held packets. */
export interface MemoryRun {
	peers: number;
	perPeer: number;
	sent: number;
	sendErrors: number;
	firstErrno: string;
	/** ACQUIREs the key manager saw: each is an acquire state the kernel keeps until it expires. */
	acquires: number;
	/** XfrmOutLarvalHeld during the load (patched, xfrm_resolve=1; 0 elsewhere). */
	held: number;
	/** Growth of unreclaimable slab (xfrm states, larval queues, skbs), bytes. */
	sUnreclaimBytes: number;
	/** Growth of all slab, bytes. */
	slabBytes: number;
	/** MemFree's drop less the key manager's log growing in tmpfs (Shmem), bytes: slab and pages alike (hash tables). */
	memBytes: number;
	problems: string[];
}

/** The per-entry and per-packet figures of one kernel. */
export interface MemoryRow extends GuestMachine {
	kernel: string;
	mode: string;
	/** The 10,000-peer load: one datagram to each. */
	entries: MemoryRun | null;
	/** The one-peer load: MEMORY_PACKETS datagrams on one acquire (only where packets are held). */
	packets: MemoryRun | null;
	/** Unreclaimable slab per acquire with its one datagram (the 10,000-peer load), bytes. */
	perEntryBytes: number | null;
	/** The same per held datagram (the one-peer load). */
	perPacketBytes: number | null;
	/** Per acquire without its datagram: per entry less per packet. */
	perEntryOnlyBytes: number | null;
	/** MemFree-based per acquire (with its datagram): includes the state hash tables, which are pages. */
	perEntryMemBytes: number | null;
	payload: number;
}

/** Types the guest's sections; pure, for unit tests. */
export function memoryRunOf(s: Map<string, string>, peers: number, perPeer: number): MemoryRun {
	const tap = parseTap(s.get('hold') ?? '');
	const point = tap.points.find((p) => p.name === 'send');
	const send = point?.diag ?? {};
	const before = parseMeminfo(s.get('meminfo-before') ?? '');
	const after = parseMeminfo(s.get('meminfo-after') ?? '');
	const grew = (k: string) => (after[k] ?? NaN) - (before[k] ?? NaN);
	const stat = (k: string) => (parseXfrmStat(s.get('stat-after') ?? '')[k] ?? 0) - (parseXfrmStat(s.get('stat-before') ?? '')[k] ?? 0);
	const problems: string[] = [];
	if (!tap.complete || !point) problems.push(`larval-hold TAP incomplete${tap.bailout ? `: ${tap.bailout}` : ''}`);
	const status = s.get('hold-status')?.trim();
	if (status !== '0') problems.push(`larval-hold exited ${status ?? '?'}: ${s.get('hold-stderr')?.trim() ?? ''}`);
	const acquires = num(s.get('acquires')?.trim(), 0);
	if (acquires < peers) problems.push(`${acquires}/${peers} ACQUIREs reached the key manager (its socket overflowed, or acquires failed)`);
	return {
		peers,
		perPeer,
		sent: num(send.sent, 0),
		sendErrors: num(send.errors, 0),
		firstErrno: String(send.first_errno ?? ''),
		acquires,
		held: stat('XfrmOutLarvalHeld'),
		sUnreclaimBytes: grew('SUnreclaim'),
		slabBytes: grew('Slab'),
		memBytes: -grew('MemFree') - grew('Shmem'),
		problems,
	};
}

/**
 * The guest script of one load: the wide policy, a key manager that never
 * answers (the acquires must stay pending, and with nobody listening no
 * acquire state is created at all), memory before, the load, the key
 * manager caught up, memory after, then everything flushed.
 */
function loadScript(lab: Lab, sysctls: Readonly<Record<string, number>>, peers: number, perPeer: number): string {
	const near = lab.topo.client.ns;
	const { setUp, cleanUp, keys } = widePolicySteps(lab, 4, 0);
	const kmLog = `${RUN_DIR}/km-memory.log`;
	const hold = ['larval-hold', '--family', '4', '--peer', nthPeer(4, 0), '--peers', String(peers), '--per-peer', String(perPeer), '--size', String(MEMORY_PAYLOAD)];
	const stat = `ip netns exec ${near} cat /proc/net/xfrm_stat`;
	// Freed objects reach the slab counters after an RCU grace period: settle first.
	const settle = 'sleep 1';
	return [
		'set -u',
		...cleanUp,
		...sysctlSteps(near, sysctls),
		...setUp,
		`rm -f ${kmLog}`,
		background(near, kmArgs(keys, kmLog, { never: true }, 3600), `${kmLog}.err`),
		waitForReady(kmLog, 'larval-km did not start'),
		settle,
		`${stat} >${RUN_DIR}/stat-before; cat /proc/meminfo >${RUN_DIR}/meminfo-before`,
		`ip netns exec ${near} ${shellJoin(hold)} >${RUN_DIR}/hold.tap 2>${RUN_DIR}/hold.err; st=$?`,
		// The key manager's socket holds what it has not read yet: wait until it has read everything (bounded, 60 s).
		`n=0; last=-1; while a=$(grep -c ' ACQUIRE ' ${kmLog}); [ "$a" -lt ${peers} ] && [ $n -lt 600 ]; do [ "$a" = "$last" ] && [ $n -gt 50 ] && break; last=$a; sleep 0.1; n=$((n+1)); done`,
		settle,
		`cat /proc/meminfo >${RUN_DIR}/meminfo-after; ${stat} >${RUN_DIR}/stat-after`,
		`echo "=== acquires"; grep -c ' ACQUIRE ' ${kmLog}`,
		...cleanUp,
		'echo "=== hold-status"; echo $st',
		`echo "=== hold"; cat ${RUN_DIR}/hold.tap`,
		`echo "=== hold-stderr"; cat ${RUN_DIR}/hold.err`,
		...['meminfo-before', 'meminfo-after', 'stat-before', 'stat-after'].map((f) => `echo "=== ${f}"; cat ${RUN_DIR}/${f}`),
	].join('\n');
}

async function runLoad(lab: Lab, sysctls: Readonly<Record<string, number>>, peers: number, perPeer: number): Promise<MemoryRun> {
	const r = await lab.vm.exec(loadScript(lab, sysctls, peers, perPeer), { timeoutMs: 300_000 * lab.timeScale });
	const s = splitSections(r.stdout);
	if (s.has('not-ready')) throw new LarvalError(`memory load set-up failed in the guest: ${s.get('not-ready')!.trim()}`, r.stderr);
	return memoryRunOf(s, peers, perPeer);
}

const per = (bytes: number, n: number): number | null => (n > 0 && Number.isFinite(bytes) ? bytes / n : null);

/** The figures of a kernel from its loads; pure. */
export function memoryRowOf(kernel: string, mode: string, machine: GuestMachine, entries: MemoryRun | null, packets: MemoryRun | null): MemoryRow {
	const perEntryBytes = entries && !entries.problems.length ? per(entries.sUnreclaimBytes, entries.acquires) : null;
	const perPacketBytes = packets && !packets.problems.length ? per(packets.sUnreclaimBytes, packets.held) : null;
	return {
		kernel,
		mode,
		...machine,
		entries,
		packets,
		perEntryBytes,
		perPacketBytes,
		perEntryOnlyBytes: perEntryBytes !== null && perPacketBytes !== null && entries!.held >= entries!.acquires ? perEntryBytes - perPacketBytes : null,
		perEntryMemBytes: entries && !entries.problems.length ? per(entries.memBytes, entries.acquires) : null,
		payload: MEMORY_PAYLOAD,
	};
}

/**
 * Boots @kernel and measures what MEMORY_ENTRIES pending acquires cost it,
 * one datagram each, and (where the kernel holds packets: the series with
 * xfrm_resolve=1) what MEMORY_PACKETS datagrams held on one acquire cost.
 * Both bounds on held packets, per acquire (xfrm_resolve_qlen, default 100)
 * and per namespace (xfrm_resolve_qlen_net, default 1000), are raised for
 * the measurement; the series has no bound on the number of acquires.
 * Stock keeps an acquire state per peer and drops the datagram
 * (xfrm_larval_drop=1, its default).
 */
export async function benchMemory(kernel: KernelTarget, guestOptions: Pick<GuestOptions, 'cpus'> = {}): Promise<MemoryRow> {
	const guest = await bootGuest(kernel, guestOptions);
	try {
		const resolve = await kernelHasResolve(guest.vm);
		const lab = await Lab.setUp(guest.vm, topology('transport'));
		const expires = { 'net.core.xfrm_acq_expires': ACQ_EXPIRES_S };
		if (!resolve) return memoryRowOf(kernel.name, 'larval_drop=1', machineOf(guest), await runLoad(lab, expires, MEMORY_ENTRIES, 1), null);
		const bounds = { 'net.core.xfrm_resolve_qlen': MEMORY_PACKETS, 'net.core.xfrm_resolve_qlen_net': MEMORY_ENTRIES + MEMORY_PACKETS };
		const sysctls = { ...RESOLVE_1.sysctls, ...expires, ...bounds };
		const entries = await runLoad(lab, sysctls, MEMORY_ENTRIES, 1);
		const packets = await runLoad(lab, sysctls, 1, MEMORY_PACKETS);
		return memoryRowOf(kernel.name, RESOLVE_1.id, machineOf(guest), entries, packets);
	} finally {
		await guest.vm.stop();
	}
}

function bytes(x: number | null): string {
	return x === null ? 'n/a' : `${Math.round(x)} B`;
}

function loadText(r: MemoryRun | null): string {
	if (!r) return 'n/a';
	const what = `${r.acquires} acquires, ${r.held} held, slab +${Math.round(r.sUnreclaimBytes / 1024)} KiB`;
	return r.problems.length ? `${what} (${r.problems.join('; ')})` : what;
}

export function renderMemory(rows: readonly MemoryRow[]): string {
	return textTable(
		['kernel [mode]', `${MEMORY_ENTRIES} peers x 1 datagram`, 'per entry (with what it holds)', `1 peer x ${MEMORY_PACKETS} datagrams`, 'per held datagram', 'per entry alone', 'per entry, MemFree'],
		rows.map((r) => [`${r.kernel} [${r.mode}]`, loadText(r.entries), bytes(r.perEntryBytes), loadText(r.packets), bytes(r.perPacketBytes), bytes(r.perEntryOnlyBytes), bytes(r.perEntryMemBytes)]),
	);
}
