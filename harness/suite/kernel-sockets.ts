import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { aeadKey, type Family, keyingLine, policyAdd } from '../net/xfrm.js';
import type { Vm } from '../vm/vm.js';
import { background, kmArgs, RUN_DIR, setUpOrNotReady, splitSections, UPTIME_FN, waitForReady } from './lab.js';
import { num } from './outcome.js';

/**
 * A kernel socket behind a trap policy (issue #15, "kernel sockets now
 * sleep"): `ip l2tp add tunnel ... encap udp` makes the tunnel's UDP
 * socket in the kernel (udp_sock_create()) and connects it to the peer
 * with flags 0, holding genl_mutex.  With a key manager that hears the
 * ACQUIRE and never answers, the call must return at once, as on stock: a
 * kernel socket never sleeps on an acquire (kernel-patches/README.md).
 * The series up to 0012 slept there until the acquire expired, then failed
 * with EHOSTUNREACH.  The key manager's log proves the policy covered the
 * socket: without its ACQUIRE the check would pass on any kernel.
 */
export interface KernelSocketsSpec {
	/** net.core.xfrm_acq_expires of the near namespace: how long a sleeping set-up would take. */
	acqExpiresS: number;
}

export interface TunnelSetUp {
	family: Family;
	/** `ip l2tp add tunnel`'s exit status. */
	status: number;
	/** Seconds the command took. */
	seconds: number;
	/** What it printed on error. */
	stderr: string;
}

export interface KernelSocketsRun {
	tunnels: TunnelSetUp[];
	/** ACQUIREs the silent key manager heard. */
	acquires: number;
	/** Whether the kernel has net.core.xfrm_resolve (the series). */
	resolve: boolean;
	output: string;
}

const NEAR = { 4: '10.89.0.1', 6: '2001:db8:89::1' } as const;
const FAR = { 4: '10.89.0.2', 6: '2001:db8:89::2' } as const;
const REQID = 89;
const L2TP_PORT = { 4: 1701, 6: 1702 } as const;

function setUp(spec: KernelSocketsSpec, dir: string): string[] {
	const cmds = [
		'ip netns add lks-near',
		'ip netns add lks-far',
		'ip -n lks-near link add lksa type veth peer name lksb netns lks-far',
		...([4, 6] as const).flatMap((f) => [
			`ip -n lks-near addr add ${NEAR[f]}/${f === 4 ? 24 : 64} dev lksa${f === 6 ? ' nodad' : ''}`,
			`ip -n lks-far addr add ${FAR[f]}/${f === 4 ? 24 : 64} dev lksb${f === 6 ? ' nodad' : ''}`,
		]),
		'ip -n lks-near link set lo up',
		'ip -n lks-near link set lksa up',
		'ip -n lks-far link set lksb up',
		`ip netns exec lks-near sysctl -qw net.core.xfrm_acq_expires=${spec.acqExpiresS}`,
		...([4, 6] as const).map((f) => `ip -n lks-near ${shellJoin(policyAdd({ dir: 'out', src: `${NEAR[f]}/${f === 4 ? 32 : 128}`, dst: `${FAR[f]}/${f === 4 ? 32 : 128}`, tmpl: { mode: 'transport', reqid: REQID } }))}`),
	];
	return [
		...setUpOrNotReady(cmds, `${dir}/setup.err`),
		// Stock has no such switch and never waits; on the series the check is about xfrm_resolve=1.
		'if [ -e /proc/sys/net/core/xfrm_resolve ]; then ip netns exec lks-near sysctl -qw net.core.xfrm_resolve=1; echo "=== resolve"; echo 1; fi',
	];
}

/** The whole scenario as one guest script. */
export function kernelSocketsScript(spec: KernelSocketsSpec): string {
	const dir = `${RUN_DIR}/kernel-sockets`;
	const log = `${dir}/km.log`;
	return [
		'set -u',
		UPTIME_FN,
		`rm -rf ${dir}; mkdir -p ${dir}`,
		'for ns in lks-near lks-far; do ip netns del $ns 2>/dev/null; done',
		...setUp(spec, dir),
		// A key manager that hears the ACQUIREs and never answers (without a listener no acquire is started at all).
		`echo ${shellJoin([keyingLine({ src: NEAR[4], dst: FAR[4], spi: 0x8900, mode: 'transport', reqid: REQID, key: aeadKey(`0x${'89'.repeat(20)}`) })])} > ${dir}/keys`,
		background('lks-near', kmArgs(`${dir}/keys`, log, { never: true }), `${log}.err`),
		'km=$!',
		waitForReady(log, 'larval-km did not start in lks-near'),
		...([4, 6] as const).flatMap((f, i) => [
			// Bounded from outside: a set-up asleep on the acquire ends at its expiry, and timeout ends anything else
			// (busybox's timeout runs its own ip applet unless given the path).
			`t0=$(up); timeout ${spec.acqExpiresS + 10} /usr/bin/ip -n lks-near l2tp add tunnel tunnel_id ${i + 1} peer_tunnel_id ${i + 1} encap udp local ${NEAR[f]} remote ${FAR[f]} udp_sport ${L2TP_PORT[f]} udp_dport ${L2TP_PORT[f]} 2>${dir}/l2tp${f}.err; rc=$?; t1=$(up)`,
			`echo "=== tunnel${f}"; echo "$rc $t0 $t1" | awk '{ printf "%d %.2f\\n", $1, $3 - $2 }'; cat ${dir}/l2tp${f}.err`,
		]),
		'kill $km 2>/dev/null; wait $km 2>/dev/null',
		`echo "=== acquires"; grep -c " ACQUIRE " ${log} || true`,
		'for ns in lks-near lks-far; do ip netns del $ns 2>/dev/null; done',
		'true',
	].join('\n');
}

export function parseKernelSockets(output: string): KernelSocketsRun {
	const s = splitSections(output);
	if (s.has('not-ready')) throw new LarvalError(`kernel sockets set-up failed in the guest: ${s.get('not-ready')!.trim()}`);
	const tunnels = ([4, 6] as const).map((family): TunnelSetUp => {
		const [head = '', ...rest] = (s.get(`tunnel${family}`) ?? '').split('\n');
		const [status, seconds] = head.trim().split(/\s+/);
		return { family, status: num(status), seconds: num(seconds), stderr: rest.join('\n').trim() };
	});
	return { tunnels, acquires: num((s.get('acquires') ?? '').trim(), 0), resolve: s.has('resolve'), output };
}

export async function runKernelSockets(vm: Vm, spec: KernelSocketsSpec): Promise<KernelSocketsRun> {
	const r = await vm.exec(kernelSocketsScript(spec), { timeoutMs: (2 * spec.acqExpiresS + 60) * 1000 });
	if (r.code !== 0) throw new LarvalError(`the kernel sockets scenario failed in the guest (status ${r.code})`, `${r.stdout}${r.stderr}`.trim());
	return parseKernelSockets(r.stdout);
}

/** How long `ip l2tp add tunnel` may take under TCG and still be "at once". */
export const AT_ONCE_S = 1;

/** What contradicts "a kernel socket never sleeps on an acquire". */
export function kernelSocketsViolations(r: KernelSocketsRun): string[] {
	const out: string[] = [];
	for (const t of r.tunnels) {
		const what = `ip l2tp add tunnel over IPv${t.family}`;
		if (t.status !== 0) out.push(`${what} exited ${Number.isFinite(t.status) ? t.status : 'without a status'}${t.stderr ? `: ${t.stderr}` : ''}`);
		if (!(t.seconds <= AT_ONCE_S)) out.push(`${what} took ${Number.isFinite(t.seconds) ? t.seconds.toFixed(2) : '?'} s, expected at most ${AT_ONCE_S} s (asleep on the acquire?)`);
	}
	// One per family: the tunnel sockets' connect() met the policy and started an acquire.
	if (r.acquires < 2) out.push(`the key manager heard ${r.acquires} ACQUIRE(s), expected one per family: the policy did not cover the tunnel's socket, so this run shows nothing`);
	return out;
}

export function describeKernelSockets(r: KernelSocketsRun): string {
	return `${r.tunnels.map((t) => `IPv${t.family} tunnel set-up ${t.status} in ${Number.isFinite(t.seconds) ? t.seconds.toFixed(2) : '?'} s`).join(', ')}; ${r.acquires} ACQUIRE(s)${r.resolve ? ', xfrm_resolve=1' : ''}`;
}
