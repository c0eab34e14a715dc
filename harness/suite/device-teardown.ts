import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { aeadKey, keyingLine, policyAdd } from '../net/xfrm.js';
import type { Vm } from '../vm/vm.js';
import { background, kmArgs, parseXfrmStat, probeArgs, RUN_DIR, setUpOrNotReady, splitSections, untilXfrmCounter, UPTIME_FN, waitForReady } from './lab.js';
import { num } from './outcome.js';

/**
 * A device deleted while packets that came in through it are held
 * (issue #14, finding 4: "skb->dev after unregister").  The held packet
 * points at the device it came in through; when that device goes, the
 * packets must be dropped with it (counted in XfrmOutLarvalFailed at
 * once), the deletion must not wait for them, and the acquire's expiry
 * afterwards must find nothing left to send ICMP for, through a freed
 * device.  Datagrams over IPv4 and IPv6, a key manager in the namespace
 * of the policies that hears the ACQUIREs and never answers:
 *
 * - `forwarded`: a client behind a tunnel-mode gateway; the gateway holds
 *   what it forwards, and the gateway's device towards the client is
 *   deleted;
 * - `xfrmi-elsewhere`: an xfrm interface made in the gateway's namespace
 *   (where its policies, its SAs and so its held packets are) and moved to
 *   the client's, which sends through it; the interface is deleted there.
 *   The series up to 0011 purged only the namespace of the device itself,
 *   so these packets stayed held and failed at the expiry instead, with
 *   icmp_send() reading the freed interface.
 */
export type DeviceTeardownVariant = 'forwarded' | 'xfrmi-elsewhere';

export interface DeviceTeardownSpec {
	variant: DeviceTeardownVariant;
	/** net.core.xfrm_acq_expires on the gateway: when the held packets would fail if the deletion left them. */
	acqExpiresS: number;
}

export interface DeviceTeardownRun {
	/** The gateway's counters with the packets held, before the deletion. */
	before: Record<string, number>;
	/** Right after `ip link del` returned. */
	afterDelete: Record<string, number>;
	/** After the acquire's expiry. */
	afterExpiry: Record<string, number>;
	/** Seconds `ip link del` took (a held device reference makes it wait 10 s and more). */
	deleteS: number;
	deleteStatus: number;
	acquires: number;
	output: string;
}

const NS = { client: 'ldt-c', gateway: 'ldt-g', server: 'ldt-s' } as const;
/** The client's side of the gateway: the device deleted (its veth peer, in the client, goes with it). */
const INSIDE_DEV = 'ldtgin';
/** The xfrm interface of the xfrmi-elsewhere variant. */
const XFRMI_DEV = 'ldtxi';
const ADDR = {
	4: { client: '10.92.1.2', inside: '10.92.1.1', outside: '10.92.0.1', server: '10.92.0.2', clientNet: '10.92.1.0/24', xfrmi: '10.92.5.1', any: '0.0.0.0/0', host: 32, net: 24 },
	6: { client: '2001:db8:92:1::2', inside: '2001:db8:92:1::1', outside: '2001:db8:92::1', server: '2001:db8:92::2', clientNet: '2001:db8:92:1::/64', xfrmi: '2001:db8:92:5::1', any: '::/0', host: 128, net: 64 },
} as const;
const REQID = 92;
const IF_ID = 92;
/** Datagrams per family: each held on the gateway. */
const DATAGRAMS = 2;

function setUp(spec: DeviceTeardownSpec, dir: string): string[] {
	const g = NS.gateway;
	const cmds = [
		...Object.values(NS).map((ns) => `ip netns add ${ns}`),
		...Object.values(NS).map((ns) => `ip -n ${ns} link set lo up`),
		`ip -n ${NS.client} link add ldtc0 type veth peer name ${INSIDE_DEV} netns ${g}`,
		`ip -n ${g} link add ldtgout type veth peer name ldts0 netns ${NS.server}`,
		...([4, 6] as const).flatMap((f) => {
			const a = ADDR[f];
			const nodad = f === 6 ? ' nodad' : '';
			return [
				`ip -n ${NS.client} addr add ${a.client}/${a.net} dev ldtc0${nodad}`,
				`ip -n ${g} addr add ${a.inside}/${a.net} dev ${INSIDE_DEV}${nodad}`,
				`ip -n ${g} addr add ${a.outside}/${a.net} dev ldtgout${nodad}`,
				`ip -n ${NS.server} addr add ${a.server}/${a.net} dev ldts0${nodad}`,
			];
		}),
		`ip -n ${NS.client} link set ldtc0 up`,
		`ip -n ${g} link set ${INSIDE_DEV} up`,
		`ip -n ${g} link set ldtgout up`,
		`ip -n ${NS.server} link set ldts0 up`,
		...Object.values(NS).flatMap((ns) => [`ip netns exec ${ns} sysctl -qw net.core.xfrm_resolve=1`, `ip netns exec ${ns} sysctl -qw net.core.xfrm_acq_expires=${spec.acqExpiresS}`]),
		...(spec.variant === 'forwarded' ? forwarding() : xfrmiElsewhere()),
	];
	return setUpOrNotReady(cmds, `${dir}/setup.err`);
}

/** The gateway forwards the client's traffic to the server and protects it with a tunnel-mode policy. */
function forwarding(): string[] {
	const g = NS.gateway;
	return [
		...([4, 6] as const).map((f) => `ip -n ${NS.client} -${f} route add default via ${ADDR[f].inside}`),
		`ip netns exec ${g} sysctl -qw net.ipv4.ip_forward=1`,
		`ip netns exec ${g} sysctl -qw net.ipv6.conf.all.forwarding=1`,
		...([4, 6] as const).map((f) => {
			const a = ADDR[f];
			return `ip -n ${g} ${shellJoin(policyAdd({ dir: 'out', src: a.clientNet, dst: `${a.server}/${a.host}`, tmpl: { mode: 'tunnel', src: a.outside, dst: a.server, reqid: REQID } }))}`;
		}),
	];
}

/** An xfrm interface over the gateway's outside device, with its policies there, moved into the client, which routes the server through it. */
function xfrmiElsewhere(): string[] {
	const g = NS.gateway;
	const c = NS.client;
	return [
		`ip -n ${g} link add ${XFRMI_DEV} type xfrm dev ldtgout if_id ${IF_ID}`,
		...([4, 6] as const).map((f) => {
			const a = ADDR[f];
			return `ip -n ${g} ${shellJoin(policyAdd({ dir: 'out', src: a.any, dst: `${a.server}/${a.host}`, ifId: IF_ID, tmpl: { mode: 'tunnel', src: a.outside, dst: a.server, reqid: REQID } }))}`;
		}),
		`ip -n ${g} link set ${XFRMI_DEV} netns ${c}`,
		...([4, 6] as const).map((f) => `ip -n ${c} addr add ${ADDR[f].xfrmi}/${ADDR[f].host} dev ${XFRMI_DEV}${f === 6 ? ' nodad' : ''}`),
		`ip -n ${c} link set ${XFRMI_DEV} up`,
		...([4, 6] as const).map((f) => `ip -n ${c} -${f} route add ${ADDR[f].server}/${ADDR[f].host} dev ${XFRMI_DEV} src ${ADDR[f].xfrmi}`),
	];
}

const stat = (section: string) => `echo "=== ${section}"; ip netns exec ${NS.gateway} cat /proc/net/xfrm_stat`;

/** The whole scenario as one guest script. */
export function deviceTeardownScript(spec: DeviceTeardownSpec): string {
	const dir = `${RUN_DIR}/device-teardown`;
	const log = `${dir}/km.log`;
	const g = NS.gateway;
	const cleanUp = `for ns in ${Object.values(NS).join(' ')}; do ip netns del $ns 2>/dev/null; done`;
	return [
		'set -u',
		UPTIME_FN,
		`rm -rf ${dir}; mkdir -p ${dir}`,
		cleanUp,
		...setUp(spec, dir),
		// --never answers nothing, but the table must not be empty.
		`echo ${shellJoin([keyingLine({ src: ADDR[4].outside, dst: ADDR[4].server, spi: 0x9200, mode: 'tunnel', reqid: REQID, key: aeadKey(`0x${'92'.repeat(20)}`) })])} > ${dir}/keys`,
		background(g, kmArgs(`${dir}/keys`, log, { never: true }), `${log}.err`),
		'km=$!',
		waitForReady(log, `larval-km did not start in ${g}`),
		// Unconnected, non-blocking: the client's own kernel has no policy, so its sendto()s return and the gateway holds what it forwards.
		...([4, 6] as const).map((f) => `ip netns exec ${NS.client} ${shellJoin(probeArgs(ADDR[f].server, { family: f, proto: 'udp', mode: 'nonblock', count: DATAGRAMS, noConnect: true, timeoutMs: 200 }))} >${dir}/probe${f}.tap 2>&1`),
		// Every datagram held (or 5 s): the client's first IPv6 datagram may wait for neighbour discovery.
		untilXfrmCounter(g, 'XfrmOutLarvalHeld', 2 * DATAGRAMS, 100),
		stat('before'),
		`t0=$(up); timeout 60 /usr/bin/ip -n ${spec.variant === 'forwarded' ? `${g} link del ${INSIDE_DEV}` : `${NS.client} link del ${XFRMI_DEV}`}; rc=$?; t1=$(up)`,
		stat('after-delete'),
		`echo "=== delete"; echo "$rc $t0 $t1" | awk '{ printf "%d %.2f\\n", $1, $3 - $2 }'`,
		// Past the expiry: where the series up to 0011 sent ICMP through the freed device.
		`sleep ${spec.acqExpiresS + 1}`,
		stat('after-expiry'),
		'kill $km 2>/dev/null; wait $km 2>/dev/null',
		`echo "=== acquires"; grep -c " ACQUIRE " ${log} || true`,
		cleanUp,
		'true',
	].join('\n');
}

export function parseDeviceTeardown(output: string): DeviceTeardownRun {
	const s = splitSections(output);
	if (s.has('not-ready')) throw new LarvalError(`device teardown set-up failed in the guest: ${s.get('not-ready')!.trim()}`);
	const [status, seconds] = (s.get('delete') ?? '').trim().split(/\s+/);
	return {
		before: parseXfrmStat(s.get('before') ?? ''),
		afterDelete: parseXfrmStat(s.get('after-delete') ?? ''),
		afterExpiry: parseXfrmStat(s.get('after-expiry') ?? ''),
		deleteS: num(seconds),
		deleteStatus: num(status),
		acquires: num((s.get('acquires') ?? '').trim(), 0),
		output,
	};
}

export async function runDeviceTeardown(vm: Vm, spec: DeviceTeardownSpec, timeScale = 1): Promise<DeviceTeardownRun> {
	const r = await vm.exec(deviceTeardownScript(spec), { timeoutMs: (spec.acqExpiresS + 90) * 1000 * timeScale });
	if (r.code !== 0) throw new LarvalError(`the device teardown scenario failed in the guest (status ${r.code})`, `${r.stdout}${r.stderr}`.trim());
	return parseDeviceTeardown(r.stdout);
}

/** The acquire's expiry the tests use: long enough to delete the device well before it, short enough to wait out. */
export const DEVICE_TEARDOWN_EXPIRES_S = 2;

/** How long deleting the device may take under TCG and still be "did not wait for the held packets". */
export const DELETE_AT_ONCE_S = 2;

const held = (c: Record<string, number>) => c.XfrmOutLarvalHeld ?? 0;
const failed = (c: Record<string, number>) => c.XfrmOutLarvalFailed ?? 0;

/**
 * What contradicts "held packets from a deleted device go with it".
 * @timeScale: the debug flavour's slowness, which stretches "at once".
 */
export function deviceTeardownViolations(r: DeviceTeardownRun, timeScale = 1): string[] {
	const out: string[] = [];
	if (held(r.before) < 2 * DATAGRAMS) out.push(`the gateway held ${held(r.before)} packets before the deletion, expected ${2 * DATAGRAMS} (${DATAGRAMS} per family): this run shows nothing`);
	if (r.acquires < 2) out.push(`the key manager heard ${r.acquires} ACQUIRE(s), expected one per family`);
	if (r.deleteStatus !== 0) out.push(`ip link del exited ${Number.isFinite(r.deleteStatus) ? r.deleteStatus : 'without a status'}`);
	const bound = DELETE_AT_ONCE_S * timeScale;
	if (!(r.deleteS <= bound)) out.push(`ip link del took ${Number.isFinite(r.deleteS) ? r.deleteS.toFixed(2) : '?'} s, expected at most ${bound} s (waiting for references the held packets keep?)`);
	const dropped = failed(r.afterDelete) - failed(r.before);
	if (dropped !== held(r.before) - failed(r.before)) {
		out.push(`the deletion dropped ${dropped} of the ${held(r.before) - failed(r.before)} held packets (XfrmOutLarvalFailed ${failed(r.before)} -> ${failed(r.afterDelete)}): the rest still point at the deleted device`);
	}
	if (failed(r.afterExpiry) !== failed(r.afterDelete)) out.push(`the acquire's expiry failed ${failed(r.afterExpiry) - failed(r.afterDelete)} more packets, which came in through the deleted device`);
	if ((r.afterExpiry.XfrmOutLarvalReleased ?? 0) !== 0) out.push(`${r.afterExpiry.XfrmOutLarvalReleased} packets were released, though no SA was ever installed`);
	return out;
}

export function describeDeviceTeardown(r: DeviceTeardownRun): string {
	return `held ${held(r.before)}, ip link del in ${Number.isFinite(r.deleteS) ? r.deleteS.toFixed(2) : '?'} s, failed ${failed(r.before)} -> ${failed(r.afterDelete)} at the deletion -> ${failed(r.afterExpiry)} after the expiry; ${r.acquires} ACQUIRE(s)`;
}

