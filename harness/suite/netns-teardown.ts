import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { aeadKey, type Family, keyingLine, policyAdd } from '../net/xfrm.js';
import { parseTap } from '../probe/tap.js';
import type { Vm } from '../vm/vm.js';
import { background, kmArgs, parseXfrmStat, probeArgs, type Proto, RUN_DIR, setUpOrNotReady, splitSections, untilXfrmCounter, UPTIME_FN, waitForReady } from './lab.js';
import { num } from './outcome.js';

/**
 * A network namespace deleted while sockets in it wait for an SA (issue #7,
 * "namespace deleted with sockets sleeping in connect()").  A socket holds
 * a reference on its namespace, so `ip netns del` only drops the name: the
 * sleepers keep waiting, a SIGKILL ends any of them at once, the others
 * fail with EHOSTUNREACH when the acquire expires, and the namespace is
 * torn down after the last of them (its veth peer vanishes).  Then, with
 * nobody left in it to pin it, a namespace whose larval entry holds only
 * kernel-generated packets (TCP RSTs, ICMP echo replies from its per-CPU
 * control sockets) is deleted and must go at once: the teardown frees the
 * held packets.  The namespaces are the scenario's own, not the lab's.
 */
export interface TeardownSpec {
	/** net.core.xfrm_acq_expires of the near namespace: how long the unkilled sleepers wait. */
	acqExpiresS: number;
}

export interface Sleeper {
	family: Family;
	proto: Extract<Proto, 'tcp' | 'udp'>;
	/** SIGKILLed right after the namespace's name is deleted. */
	killed: boolean;
}

/** Both families, both protocols, every other one killed. */
export const SLEEPERS: readonly Sleeper[] = ([4, 6] as const).flatMap((family) =>
	(['udp', 'tcp'] as const).flatMap((proto) => [true, false].map((killed) => ({ family, proto, killed }))));

/**
 * The sleepers that sleep on the larval entry itself (XfrmOutLarvalWait):
 * a blocking UDP socket in its first send() (its connect() returns at
 * once); a blocking TCP connect() sleeps as TCP always does, its SYN held.
 */
const UDP_SLEEPERS = SLEEPERS.filter((s) => s.proto === 'udp').length;

export interface SleeperResult extends Sleeper {
	/** Still running half a second after the name was deleted. */
	aliveAfterDelete: boolean;
	/** Seconds from the deletion of the name to the process's exit; null if it never exited within the bound. */
	exitS: number | null;
	/** The call that waits, as the probe names it: `send 1` for UDP, `connect` for TCP. */
	waitCall: string;
	waitErrno: string | null;
	waitMs: number;
	tapText: string;
}

export interface TeardownRun {
	sleepers: SleeperResult[];
	/** Near namespace counters just before its name was deleted. */
	statBeforeDelete: Record<string, number>;
	/** Seconds from the deletion of the name to the namespace's teardown (its veth peer gone); null: not within the bound. */
	teardownS: number | null;
	/** The second namespace: only kernel-generated packets held, nobody in it. */
	heldOnly: { statBeforeDelete: Record<string, number>; teardownS: number | null };
	output: string;
}

const NEAR4 = '10.88.0.1';
const FAR4 = '10.88.0.2';
const NEAR6 = '2001:db8:88::1';
const FAR6 = '2001:db8:88::2';
const REQID = 88;
/** A port nobody listens on in the near namespace: the far side's SYNs there draw RSTs. */
const CLOSED_PORT = 9;

/** Exited (or a zombie, which holds no namespace any more). */
const GONE = 'gone() { s=$(cut -d" " -f3 /proc/$1/stat 2>/dev/null); [ -z "$s" ] || [ "$s" = Z ]; }';

function pairSetUp(near: string, far: string, dev: string, acqExpiresS: number): string[] {
	const cmds = [
		`ip netns add ${near}`,
		`ip netns add ${far}`,
		`ip -n ${near} link add ${dev}a type veth peer name ${dev}b netns ${far}`,
		`ip -n ${near} addr add ${NEAR4}/24 dev ${dev}a`,
		`ip -n ${near} addr add ${NEAR6}/64 dev ${dev}a nodad`,
		`ip -n ${far} addr add ${FAR4}/24 dev ${dev}b`,
		`ip -n ${far} addr add ${FAR6}/64 dev ${dev}b nodad`,
		...[near, far].flatMap((ns) => [`ip -n ${ns} link set lo up`]),
		`ip -n ${near} link set ${dev}a up`,
		`ip -n ${far} link set ${dev}b up`,
		`ip netns exec ${near} sysctl -qw net.core.xfrm_resolve=1`,
		`ip netns exec ${near} sysctl -qw net.core.xfrm_acq_expires=${acqExpiresS}`,
		`ip -n ${near} ${shellJoin(policyAdd({ dir: 'out', src: `${NEAR4}/32`, dst: `${FAR4}/32`, tmpl: { mode: 'transport', reqid: REQID } }))}`,
		`ip -n ${near} ${shellJoin(policyAdd({ dir: 'out', src: `${NEAR6}/128`, dst: `${FAR6}/128`, tmpl: { mode: 'transport', reqid: REQID } }))}`,
	];
	return setUpOrNotReady(cmds, `${RUN_DIR}/teardown.err`);
}

/**
 * A key manager that hears the ACQUIREs and never answers: without a
 * listener an acquire is not even started (the netlink multicast fails and
 * the lookup says XfrmOutNoStates).  It is a process in the namespace too,
 * so it is killed with the name, as an operator would.
 */
function silentKeyManager(near: string, dir: string): string[] {
	const log = `${dir}/km-${near}.log`;
	return [
		// --never answers nothing, but the table must not be empty.
		`echo ${shellJoin([keyingLine({ src: NEAR4, dst: FAR4, spi: 0x8800, mode: 'transport', reqid: REQID, key: aeadKey(`0x${'88'.repeat(20)}`) })])} > ${dir}/keys`,
		background(near, kmArgs(`${dir}/keys`, log, { never: true }), `${log}.err`),
		`km=$!`,
		waitForReady(log, `larval-km did not start in ${near}`),
	];
}

/** Polls until @dev is gone from @far, at most @boundS seconds, and prints the seconds since deletion (or "never"). */
function awaitTeardown(section: string, far: string, dev: string, boundS: number): string[] {
	return [
		`i=0; while ip -n ${far} link show ${dev} >/dev/null 2>&1 && [ $i -lt ${boundS * 20} ]; do sleep 0.05; i=$((i + 1)); done`,
		`echo "=== ${section}"; if ip -n ${far} link show ${dev} >/dev/null 2>&1; then echo never; else echo "$(up) $del" | awk '{ printf "%.2f\\n", $1 - $2 }'; fi`,
	];
}

/** The far side's SYNs and pings to the near side: their replies are the near kernel's own packets, held by its policy. */
function kernelReplies(far: string, dir: string): string[] {
	return ([[4, NEAR4], [6, NEAR6]] as const).flatMap(([family, addr]) => [
		`ip netns exec ${far} ${shellJoin(['larval-probe', '--family', String(family), '--proto', 'tcp', '--peer', addr, '--port', String(CLOSED_PORT), '--mode', 'nonblock', '--count', '1', '--timeout-ms', '800'])} >${dir}/syn${family}.tap 2>&1 &`,
		`ip netns exec ${far} ping -${family} -c 2 -W 1 ${addr} >${dir}/ping${family}.out 2>&1 &`,
	]);
}

/** The whole scenario as one guest script (each ssh round trip costs ~0.1 s under TCG). */
export function teardownScript(spec: TeardownSpec): string {
	const dir = `${RUN_DIR}/teardown`;
	const probeTimeoutS = spec.acqExpiresS + 3;
	const exitBoundS = spec.acqExpiresS + probeTimeoutS + 10;
	const sleeperLines = SLEEPERS.map((s, i) => {
		const peer = s.family === 4 ? FAR4 : FAR6;
		// The probe's watchdog stays out of the way: the acquire's expiry is what must end the unkilled waits.
		// (Its UDP send after the failed connect finds no key manager, so the probe then waits out this timeout for an echo.)
		const args = probeArgs(peer, { family: s.family, proto: s.proto, mode: 'block', count: 1, timeoutMs: probeTimeoutS * 1000 });
		return `ip netns exec ltd-near ${shellJoin(args)} >${dir}/s${i}.tap 2>${dir}/s${i}.err & p${i}=$!`;
	});
	const each = (f: (i: number) => string) => SLEEPERS.map((_, i) => f(i));
	return [
		'set -u',
		UPTIME_FN,
		GONE,
		`rm -rf ${dir}; mkdir -p ${dir}`,
		'for ns in ltd-near ltd-far ltd2-near ltd2-far; do ip netns del $ns 2>/dev/null; done',
		...pairSetUp('ltd-near', 'ltd-far', 'ltd', spec.acqExpiresS),
		...silentKeyManager('ltd-near', dir),
		...kernelReplies('ltd-far', dir),
		...sleeperLines,
		// Every UDP sleeper in its wait (XfrmOutLarvalWait counts the calls asleep) before the name goes, at most 10 s.
		untilXfrmCounter('ltd-near', 'XfrmOutLarvalWait', UDP_SLEEPERS, 200),
		'sleep 0.3',
		'echo "=== stat-before-delete"; ip netns exec ltd-near cat /proc/net/xfrm_stat',
		'del=$(up); ip netns del ltd-near',
		'sleep 0.5',
		'echo "=== alive-after-delete"',
		...each((i) => `gone $p${i} || echo ${i}`),
		...SLEEPERS.flatMap((s, i) => (s.killed ? [`kill -9 $p${i}`] : [])),
		'kill $km',
		// Each sleeper's exit, in seconds after the deletion, polled every 50 ms up to the bound.
		`i=0; while [ $i -lt ${exitBoundS * 20} ]; do`,
		...each((i) => `\t[ -z "\${x${i}:-}" ] && gone $p${i} && x${i}=$(up)`),
		`\tif ${SLEEPERS.map((_, i) => `[ -n "\${x${i}:-}" ]`).join(' && ')}; then break; fi`,
		'\tsleep 0.05; i=$((i + 1))',
		'done',
		'echo "=== exits"',
		...each((i) => `echo "${i} $del \${x${i}:-never}" | awk '{ if ($3 == "never") print $1, "never"; else printf "%d %.2f\\n", $1, $3 - $2 }'`),
		...each((i) => `kill -9 $p${i} 2>/dev/null; wait $p${i} 2>/dev/null`),
		...awaitTeardown('teardown', 'ltd-far', 'ltdb', 15),
		...each((i) => `echo "=== sleeper-${i}"; cat ${dir}/s${i}.tap`),
		// Nobody left in the second namespace: only the kernel's replies are held when its name goes.
		...pairSetUp('ltd2-near', 'ltd2-far', 'lte', 60),
		...silentKeyManager('ltd2-near', dir),
		...kernelReplies('ltd2-far', dir),
		untilXfrmCounter('ltd2-near', 'XfrmOutLarvalHeld', 4, 100),
		'echo "=== held-stat-before-delete"; ip netns exec ltd2-near cat /proc/net/xfrm_stat',
		'del=$(up); ip netns del ltd2-near; kill $km; wait $km',
		...awaitTeardown('held-teardown', 'ltd2-far', 'lteb', 15),
		'for ns in ltd-far ltd2-far; do ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del $ns 2>/dev/null; done',
		'true',
	].join('\n');
}

function seconds(text: string | undefined): number | null {
	const t = text?.trim() ?? '';
	return t === '' || t === 'never' ? null : num(t, NaN);
}

export function parseTeardown(output: string): TeardownRun {
	const s = splitSections(output);
	if (s.has('not-ready')) throw new LarvalError(`netns teardown set-up failed in the guest: ${s.get('not-ready')!.trim()}`);
	const alive = new Set((s.get('alive-after-delete') ?? '').split('\n').map((l) => l.trim()).filter(Boolean).map(Number));
	const exits = new Map<number, number | null>();
	for (const line of (s.get('exits') ?? '').split('\n')) {
		const [i, v] = line.trim().split(/\s+/);
		if (i !== undefined && v !== undefined) exits.set(Number(i), v === 'never' ? null : num(v, NaN));
	}
	const sleepers = SLEEPERS.map((sl, i): SleeperResult => {
		const tapText = s.get(`sleeper-${i}`) ?? '';
		const waitCall = sl.proto === 'udp' ? 'send 1' : 'connect';
		const wait = parseTap(tapText).points.find((p) => p.name === waitCall);
		const errno = wait ? (typeof wait.diag.errno_name === 'string' ? wait.diag.errno_name : '') : null;
		return { ...sl, aliveAfterDelete: alive.has(i), exitS: exits.get(i) ?? null, waitCall, waitErrno: errno, waitMs: num(wait?.diag.duration_ms), tapText };
	});
	return {
		sleepers,
		statBeforeDelete: parseXfrmStat(s.get('stat-before-delete') ?? ''),
		teardownS: seconds(s.get('teardown')),
		heldOnly: { statBeforeDelete: parseXfrmStat(s.get('held-stat-before-delete') ?? ''), teardownS: seconds(s.get('held-teardown')) },
		output,
	};
}

export async function runNetnsTeardown(vm: Vm, spec: TeardownSpec, timeScale = 1): Promise<TeardownRun> {
	const r = await vm.exec(teardownScript(spec), { timeoutMs: (4 * spec.acqExpiresS + 60) * 1000 * timeScale });
	if (r.code !== 0) throw new LarvalError(`the netns teardown scenario failed in the guest (status ${r.code})`, `${r.stdout}${r.stderr}`.trim());
	return parseTeardown(r.stdout);
}

/** A sleeper killed after the deletion must be gone within this many seconds: SIGKILL ends the wait. */
export const KILL_BOUND_S = 1;
/** After the last sleeper, or at once when nobody pins it: how long the kernel may take to tear the namespace down. */
export const TEARDOWN_BOUND_S = 5;

/** What contradicts the documented behaviour of a namespace deleted under sleeping sockets (see TeardownRun). */
export function teardownViolations(r: TeardownRun, spec: TeardownSpec): string[] {
	const out: string[] = [];
	const waits = r.statBeforeDelete.XfrmOutLarvalWait ?? 0;
	if (waits < UDP_SLEEPERS) out.push(`${waits} socket calls asleep on the acquire before the deletion, expected ${UDP_SLEEPERS} (the UDP sends)`);
	if (!((r.statBeforeDelete.XfrmOutLarvalHeld ?? 0) > 0)) out.push('no packet held before the deletion');
	for (const [i, s] of r.sleepers.entries()) {
		const who = `sleeper ${i} (${s.proto}${s.family === 6 ? '6' : ''}${s.killed ? ', killed' : ''})`;
		if (!s.aliveAfterDelete) out.push(`${who} returned when the name was deleted: the namespace lives while its sockets do`);
		if (s.exitS === null) out.push(`${who} never exited`);
		else if (s.killed && s.exitS > 0.5 + KILL_BOUND_S) out.push(`${who} exited ${s.exitS.toFixed(2)} s after the deletion, SIGKILL at 0.5 s`);
		// Their wait began before the deletion (aliveAfterDelete); it must end at the acquire's expiry, not later.
		if (!s.killed) {
			if (s.waitErrno !== 'EHOSTUNREACH') out.push(`${who}: ${s.waitCall} gave ${s.waitErrno ?? 'nothing'}, expected EHOSTUNREACH at the acquire's expiry`);
			else if (s.waitMs > (spec.acqExpiresS + 2) * 1000) out.push(`${who}: ${s.waitCall} failed after ${s.waitMs} ms, the acquire expired after ${spec.acqExpiresS} s`);
		}
	}
	const lastExit = Math.max(...r.sleepers.map((s) => s.exitS ?? Infinity));
	if (r.teardownS === null) out.push('the namespace was never torn down after its last sleeper');
	else if (Number.isFinite(lastExit) && r.teardownS > lastExit + TEARDOWN_BOUND_S) out.push(`the namespace was torn down ${r.teardownS.toFixed(2)} s after the deletion, ${(r.teardownS - lastExit).toFixed(2)} s after its last sleeper`);
	const held = r.heldOnly.statBeforeDelete.XfrmOutLarvalHeld ?? 0;
	if (held < 4) out.push(`the second namespace held ${held} kernel-generated packets before the deletion, expected at least 4 (RSTs and echo replies)`);
	if (r.heldOnly.teardownS === null) out.push('the namespace holding only kernel packets was never torn down');
	else if (r.heldOnly.teardownS > TEARDOWN_BOUND_S) out.push(`the namespace holding only kernel packets took ${r.heldOnly.teardownS.toFixed(2)} s to be torn down`);
	return out;
}

export function describeTeardown(r: TeardownRun): string {
	const exits = r.sleepers.map((s) => `${s.proto}${s.family === 6 ? '6' : ''}${s.killed ? '(killed)' : ''} ${s.exitS?.toFixed(2) ?? 'never'} s ${s.waitErrno ?? '-'}`);
	return `sleepers exited after the deletion: ${exits.join(', ')}; torn down after ${r.teardownS?.toFixed(2) ?? 'never'} s; ` +
		`kernel packets only: ${r.heldOnly.statBeforeDelete.XfrmOutLarvalHeld ?? 0} held, torn down after ${r.heldOnly.teardownS?.toFixed(2) ?? 'never'} s`;
}
