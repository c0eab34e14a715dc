import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { aeadKey, type Family, keyingLine, policyAdd } from '../net/xfrm.js';
import { outboundInstallNs, parseEventLog } from '../probe/event-log.js';
import { parseTap, type TapStream } from '../probe/tap.js';
import { background, counterDelta, ECHO_PORT, kmArgs, type Lab, parseXfrmStat, RUN_DIR, splitSections, sysctlSteps, waitForReady } from './lab.js';
import { num } from './outcome.js';

/**
 * Many sockets waiting at once (vm-images/probes/larval-waiters.c): every
 * socket connected to one peer behind a wide transport-mode policy (one
 * acquire, N waiters), or each to a peer of its own (N acquires, one
 * waiter each), and the key manager installing the SA of one peer.
 */
export interface WaitersSpec {
	family: Family;
	sockets: number;
	/** 'one': every socket to the first peer; 'each': socket i to peer i, and only the last peer is keyed. */
	peers: 'one' | 'each';
	/** The key manager answers the keyed peer's ACQUIRE this late: every socket must be waiting by then. */
	kmDelayMs: number;
	/** The key manager never answers: the acquire expires (set net.core.xfrm_acq_expires) and every waiter fails. */
	kmNever?: boolean;
	/**
	 * Before the sockets, larval-hold sends this many datagrams to the first
	 * peer (unconnected, non-blocking: held), past the acquire's queue bound
	 * (`xfrm_resolve_qlen`), so the acquire ends with a full queue.
	 */
	fillQueue?: number;
	/** How long the probe waits for the wakes it expects, and then watches for wakes it does not. */
	timeoutMs?: number;
	settleMs?: number;
}

export interface WaitersRun {
	sockets: number;
	connectErrors: number;
	firstConnectErrno: string;
	setupMs: number;
	/** Sockets epoll called writable right after connect(), before any SA. */
	writableAtOnce: number;
	woken: number;
	/** Up to the first 16 writable sockets, by index. */
	wokenIndex: number[];
	readyNs: bigint | null;
	firstWakeNs: bigint | null;
	lastWakeNs: bigint | null;
	/** Woken sockets whose SO_ERROR was set (a failed acquire: EHOSTUNREACH), and the first such error. */
	soErrors: number;
	firstSoError: string;
	/** send() of one datagram on each writable socket: a wake before the SA shows here as EAGAIN. */
	sendErrors: number;
	firstSendErrno: string;
	acquires: number;
	installs: number;
	/** When the key manager's NEWSA for the keyed peer left. */
	installNs: bigint | null;
	/** How the near namespace's /proc/net/xfrm_stat moved during the run. */
	xfrmStat: Record<string, number>;
	problems: string[];
	tapText: string;
	kmLog: string;
}

/** The wide policy's prefix and its first peer, per family: nothing else in the topologies lives there. */
const WIDE: Record<Family, { prefix: string; base: number[] }> = {
	4: { prefix: '10.99.0.0/16', base: [10, 99, 0, 1] },
	6: { prefix: '2001:db8:99::/64', base: [0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1] },
};
/** By number: the guest has no /etc/protocols for ip(8) to read names from. */
const IPPROTO_UDP = 17;
const WAITERS_REQID = 99;
const WAITERS_SPI = 0x9900;
const WAITERS_KEY = aeadKey(`0x${'99'.repeat(20)}`);
/** larval-waiters' own cap; the v6 arithmetic below stays in the last group up to it. */
export const MAX_WAITERS = 20000;

/** Peer @i of the wide prefix, as larval-waiters computes it (first peer + i). */
export function nthPeer(family: Family, i: number): string {
	if (!Number.isInteger(i) || i < 0 || i >= MAX_WAITERS) throw new Error(`peer index out of range: ${i}`);
	const b = WIDE[family].base;
	if (family === 4) {
		const n = ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]! + i;
		return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
	}
	const low = b[6]! * 0x10000 + b[7]! + i;
	const groups = [...b.slice(0, 6), Math.floor(low / 0x10000), low % 0x10000];
	return groups.map((g) => g.toString(16)).join(':');
}

export function keyedPeerIndex(spec: WaitersSpec): number {
	return spec.peers === 'one' ? 0 : spec.sockets - 1;
}

export function waitersArgs(spec: WaitersSpec): string[] {
	if (!Number.isInteger(spec.sockets) || spec.sockets < 1 || spec.sockets > MAX_WAITERS) throw new Error(`sockets must be 1..${MAX_WAITERS}, not ${spec.sockets}`);
	const args = ['larval-waiters', '--family', String(spec.family), '--peer', nthPeer(spec.family, 0), '--port', String(ECHO_PORT), '--count', String(spec.sockets)];
	if (spec.peers === 'each') args.push('--distinct', '--expect', '1');
	args.push('--timeout-ms', String(spec.timeoutMs ?? spec.kmDelayMs + 5000), '--settle-ms', String(spec.settleMs ?? 300));
	return args;
}

function ns(v: unknown): bigint | null {
	const n = num(v);
	return Number.isFinite(n) && n > 0 ? BigInt(Math.round(n)) : null;
}

/** Types what the probe and the key manager said; pure, for unit tests. */
export function waitersRunOf(tapText: string, tap: TapStream, probeStatus: number, probeStderr: string, kmText: string, xfrmStatText: string, sockets: number, xfrmStatBeforeText = ''): WaitersRun {
	const point = (name: string) => tap.points.find((p) => p.name === name)?.diag ?? {};
	const problems: string[] = [];
	if (!tap.complete) problems.push(`larval-waiters TAP incomplete${tap.bailout ? `: bail out: ${tap.bailout}` : ''}`);
	if (probeStatus !== 0) problems.push(`larval-waiters exited ${probeStatus}${probeStderr ? `: ${probeStderr}` : ''}`);
	const connect = point('connect');
	const woken = point('woken');
	const send = point('send after wake');
	const km = parseEventLog(kmText);
	return {
		sockets,
		connectErrors: num(connect.connect_errors),
		firstConnectErrno: String(connect.first_errno ?? ''),
		setupMs: num(connect.setup_ms),
		writableAtOnce: num(point('writable at once').writable),
		woken: num(woken.woken),
		wokenIndex: Array.isArray(woken.woken_index) ? (woken.woken_index as unknown[]).map(num) : [],
		readyNs: ns(connect.ready_ns),
		firstWakeNs: ns(woken.first_wake_ns),
		lastWakeNs: ns(woken.last_wake_ns),
		soErrors: num(woken.so_errors),
		firstSoError: String(woken.first_so_error ?? ''),
		sendErrors: num(send.send_errors),
		firstSendErrno: String(send.first_errno ?? ''),
		acquires: km.filter((e) => e.kind === 'ACQUIRE').length,
		installs: km.filter((e) => e.kind === 'INSTALL' && (e.fields.err ?? '0') === '0').length,
		installNs: outboundInstallNs(km),
		xfrmStat: counterDelta(parseXfrmStat(xfrmStatBeforeText), parseXfrmStat(xfrmStatText)),
		problems,
		tapText,
		kmLog: kmText,
	};
}

/** ms from the installation to a wake, or NaN when either is missing. */
export function msAfterInstall(r: WaitersRun, t: bigint | null): number {
	return r.installNs === null || t === null ? NaN : Number(t - r.installNs) / 1e6;
}

/**
 * The wide policy of @family in the lab's near namespace, with its route
 * via the far host, and a keying table holding the SA of peer @keyedIndex
 * alone: set-up (guarded: a failing step ends the script as not ready) and
 * clean-up, which takes it all away so the lab's cases see the topology as
 * before.
 */
export function widePolicySteps(lab: Lab, family: Family, keyedIndex: number): { setUp: string[]; cleanUp: string[]; keys: string } {
	const t = lab.topo;
	if (t.name !== 'transport') throw new LarvalError('the wide policy lives on the transport topology (its near side keys its own policy)');
	if (t.client.ns !== t.kmNamespace || lab.keying !== 'test') throw new LarvalError('the wide policy needs the test key manager on the probe\'s side');
	const near = t.client.ns;
	const [me, via] = family === 4 ? [t.client.v4, t.server.v4] : [t.client.v6, t.server.v6];
	const wide = WIDE[family].prefix;
	const host = family === 4 ? '/32' : '/128';
	const keys = `${RUN_DIR}/keys-waiters`;
	const table = `${keyingLine({ src: me, dst: nthPeer(family, keyedIndex), spi: WAITERS_SPI, mode: 'transport', reqid: WAITERS_REQID, key: WAITERS_KEY })}\n`;
	const fam = family === 4 ? '-4' : '-6';
	return {
		setUp: [
			...[
				`ip -n ${near} ${fam} route replace ${wide} via ${via}`,
				`ip -n ${near} ${shellJoin(policyAdd({ dir: 'out', src: `${me}${host}`, dst: wide, proto: IPPROTO_UDP, tmpl: { mode: 'transport', reqid: WAITERS_REQID } }))}`,
			].map((cmd) => `${cmd} 2>${RUN_DIR}/waiters.err || { echo "=== not-ready"; echo ${shellJoin([cmd])}; cat ${RUN_DIR}/waiters.err; exit 94; }`),
			`cat > ${keys} <<'KEYS'\n${table}KEYS`,
		],
		cleanUp: [...lab.nearResetSteps(), `ip -n ${near} ${fam} route del ${wide} 2>/dev/null`],
		keys,
	};
}

function fillQueueStep(near: string, spec: WaitersSpec): string {
	const hold = ['larval-hold', '--family', String(spec.family), '--peer', nthPeer(spec.family, 0), '--port', String(ECHO_PORT), '--per-peer', String(spec.fillQueue)];
	return `ip netns exec ${near} ${shellJoin(hold)} >${RUN_DIR}/hold.tap 2>&1 || { echo "=== not-ready"; echo "larval-hold failed"; cat ${RUN_DIR}/hold.tap; exit 95; }`;
}

/**
 * Runs larval-waiters once in the lab's near namespace, with its own wide
 * policy, route and keying table, and takes them away again so the lab's
 * cases see the topology as before.
 */
export async function runWaiters(lab: Lab, spec: WaitersSpec, sysctls: Readonly<Record<string, string | number>>): Promise<WaitersRun> {
	const near = lab.topo.client.ns;
	const { setUp, cleanUp, keys } = widePolicySteps(lab, spec.family, keyedPeerIndex(spec));
	const kmLog = `${RUN_DIR}/km-waiters.log`;
	const args = waitersArgs(spec);
	const script = [
		'set -u',
		...cleanUp,
		...sysctlSteps(near, sysctls),
		...setUp,
		`rm -f ${kmLog}`,
		background(near, kmArgs(keys, kmLog, spec.kmNever ? { never: true } : { delayMs: spec.kmDelayMs }), `${kmLog}.err`),
		waitForReady(kmLog, 'larval-km did not start'),
		`ip netns exec ${near} cat /proc/net/xfrm_stat >${RUN_DIR}/waiters-stat-before`,
		...(spec.fillQueue ? [fillQueueStep(near, spec)] : []),
		`ip netns exec ${near} ${shellJoin(args)} >${RUN_DIR}/waiters.tap 2>${RUN_DIR}/waiters.err; st=$?`,
		`echo "=== xfrm-stat"; ip netns exec ${near} cat /proc/net/xfrm_stat`,
		...cleanUp,
		'echo "=== probe-status"; echo $st',
		`echo "=== probe"; cat ${RUN_DIR}/waiters.tap`,
		`echo "=== probe-stderr"; cat ${RUN_DIR}/waiters.err`,
		`echo "=== km"; cat ${kmLog}`,
		`echo "=== xfrm-stat-before"; cat ${RUN_DIR}/waiters-stat-before`,
	].join('\n');
	const timeoutMs = ((spec.timeoutMs ?? spec.kmDelayMs + 5000) + (spec.settleMs ?? 300) + 60_000) * lab.timeScale;
	const r = await lab.vm.exec(script, { timeoutMs });
	const s = splitSections(r.stdout);
	if (s.has('not-ready')) throw new LarvalError(`waiters set-up failed in the guest: ${s.get('not-ready')!.trim()}`, r.stderr);
	const tapText = s.get('probe') ?? '';
	return waitersRunOf(tapText, parseTap(tapText), Number(s.get('probe-status')?.trim() ?? NaN), s.get('probe-stderr')?.trim() ?? '', s.get('km') ?? '', s.get('xfrm-stat') ?? '', spec.sockets, s.get('xfrm-stat-before') ?? '');
}

/** The run itself, and every socket connected and waiting at first (not writable before @until). */
function allWaitingAtFirst(r: WaitersRun, until: string): string[] {
	const out = [...r.problems];
	if (r.connectErrors) out.push(`${r.connectErrors} connect() calls failed (${r.firstConnectErrno})`);
	if (r.writableAtOnce) out.push(`${r.writableAtOnce}/${r.sockets} sockets writable before ${until}`);
	return out;
}

/** What contradicts "one installation wakes every socket waiting on that acquire, none before it". */
export function everyWaiterWokenByInstall(r: WaitersRun): string[] {
	const out = allWaitingAtFirst(r, 'any SA');
	if (r.woken !== r.sockets) out.push(`${r.woken}/${r.sockets} sockets woken`);
	if (r.acquires !== 1) out.push(`${r.acquires} ACQUIREs, expected 1 for one peer`);
	out.push(...wokenAfterInstall(r));
	return out;
}

/** What contradicts "of N acquires with one waiter each, installing one SA wakes exactly its socket". */
export function onlyTheKeyedWaiterWoken(r: WaitersRun, keyedIndex: number): string[] {
	const out = allWaitingAtFirst(r, 'any SA');
	if (r.woken !== 1 || r.wokenIndex[0] !== keyedIndex) out.push(`woken: ${r.woken} socket(s) [${r.wokenIndex.join(', ')}], expected exactly socket ${keyedIndex}`);
	if (r.acquires !== r.sockets) out.push(`${r.acquires} ACQUIREs, expected one per peer (${r.sockets})`);
	out.push(...wokenAfterInstall(r));
	return out;
}

function wokenAfterInstall(r: WaitersRun): string[] {
	const out: string[] = [];
	if (r.installs < 1 || r.installNs === null) return ['the key manager installed no SA'];
	if (r.readyNs === null || r.readyNs >= r.installNs) out.push('the sockets were not all waiting before the SA was installed (raise kmDelayMs)');
	const first = msAfterInstall(r, r.firstWakeNs);
	if (!(first >= 0)) out.push(`first wake ${first.toFixed(1)} ms after the installation, expected after it`);
	if (r.sendErrors) out.push(`${r.sendErrors} send() calls after the wake failed (${r.firstSendErrno})`);
	return out;
}

/**
 * What contradicts "when the acquire fails, every socket waiting on it is
 * woken with EHOSTUNREACH in SO_ERROR" (the key manager never answers).
 */
export function everyWaiterFailed(r: WaitersRun): string[] {
	const out = allWaitingAtFirst(r, 'the acquire ended');
	if (r.woken !== r.sockets) out.push(`${r.woken}/${r.sockets} sockets woken`);
	if (r.soErrors !== r.sockets || r.firstSoError !== 'EHOSTUNREACH') out.push(`${r.soErrors}/${r.sockets} woken with SO_ERROR set (first: ${r.firstSoError || 'none'}), expected all with EHOSTUNREACH`);
	if (r.installs) out.push(`the key manager installed ${r.installs} SA(s)`);
	return out;
}

/** The series' default bound on the packets one acquire holds (`net.core.xfrm_resolve_qlen`). */
export const RESOLVE_QLEN = 100;

/**
 * everyWaiterFailed, with the acquire's queue filled past its bound first
 * (spec.fillQueue): the bound held, the excess counted as overflow, and
 * every held packet dropped and counted when the acquire failed.
 */
export function everyWaiterFailedWithFullQueue(r: WaitersRun, fill: number): string[] {
	const out = everyWaiterFailed(r);
	const held = r.xfrmStat.XfrmOutLarvalHeld ?? 0;
	const overflow = r.xfrmStat.XfrmOutLarvalOverflow ?? 0;
	const failed = r.xfrmStat.XfrmOutLarvalFailed ?? 0;
	const want = Math.min(fill, RESOLVE_QLEN);
	if (held !== want) out.push(`${held} datagrams held, expected ${want} (${fill} sent, bound ${RESOLVE_QLEN})`);
	if (overflow !== fill - want) out.push(`${overflow} counted as overflow, expected ${fill - want}`);
	if (failed < held) out.push(`${failed} held packets dropped and counted at the failure, expected ${held}`);
	return out;
}

/** What contradicts stock's poll(): every socket writable at once, while no SA exists. */
export function everySocketWritableAtOnce(r: WaitersRun): string[] {
	const out = [...r.problems];
	if (r.writableAtOnce !== r.sockets) out.push(`${r.writableAtOnce}/${r.sockets} sockets writable right after connect(), stock says all`);
	return out;
}

export function describeWaiters(r: WaitersRun): string {
	const afterReady = (t: bigint | null) => (t === null || r.readyNs === null ? NaN : Number(t - r.readyNs) / 1e6);
	const woken = r.woken > r.writableAtOnce
		? r.installNs !== null
			? ` ${msAfterInstall(r, r.firstWakeNs).toFixed(1)}..${msAfterInstall(r, r.lastWakeNs).toFixed(1)} ms after the NEWSA`
			: ` ${afterReady(r.firstWakeNs).toFixed(0)}..${afterReady(r.lastWakeNs).toFixed(0)} ms after set-up`
		: '';
	return `${r.sockets} sockets, ${r.acquires} ACQUIRE, ${r.writableAtOnce} writable at once, ${r.woken} woken${woken}` +
		(r.soErrors ? ` (${r.soErrors} with SO_ERROR ${r.firstSoError})` : '') +
		(r.wokenIndex.length && r.woken <= 4 ? ` [${r.wokenIndex.join(', ')}]` : '') +
		`, set-up ${r.setupMs.toFixed(0)} ms`;
}
