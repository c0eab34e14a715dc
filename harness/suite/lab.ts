import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { type Host, keyingTable, type Topology } from '../net/topology.js';
import { type Family, stateAdd } from '../net/xfrm.js';
import { type GuestEvent, parseEventLog } from '../probe/event-log.js';
import { parseTap, type TapStream } from '../probe/tap.js';
import type { Vm } from '../vm/vm.js';
import { type Firewall, firewallLoad, firewallReport, firewallUnload } from '../net/firewall.js';
import { type IkeDaemonName, type IkeKeying, ikeKeying } from '../km/ike-daemon.js';

export const ECHO_PORT = 7000;
export const RAW_PROTO = 253;

export type Proto = 'tcp' | 'udp' | 'raw' | 'ping';

/** What the key manager does with an ACQUIRE (vm-images/km/larval-km.c). */
export interface KmBehaviour {
	delayMs?: number;
	never?: boolean;
	deleteAfterMs?: number;
	exitAfterFirst?: boolean;
}

/** What the probe does (vm-images/probes/larval-probe.c). */
export interface ProbeSpec {
	family: Family;
	proto: Proto;
	mode: 'block' | 'nonblock';
	count?: number;
	intervalMs?: number;
	timeoutMs?: number;
	sndtimeoMs?: number;
	/** Another process calls shutdown(SHUT_WR) on the socket this long after it is opened. */
	shutdownAfterMs?: number;
	/** Another thread close()s the socket this long after it is opened. */
	closeAfterMs?: number;
	noConnect?: boolean;
	pollBeforeSend?: boolean;
	/** After the poll, connect() to loopback (no policy) and read SO_ERROR this long after. */
	reconnectWaitMs?: number;
	waitPollout?: boolean;
	sockopts?: readonly string[];
	/**
	 * Instead of the probe, one query through glibc's resolver
	 * (vm-images/probes/larval-resolve.c) to the peer's name server, which
	 * retries after `timeoutMs` rounded to seconds.  IPv4 only.
	 */
	resolver?: boolean;
}

export interface CaseRun {
	tap: TapStream;
	tapText: string;
	probeStatus: number;
	probeStderr: string;
	km: GuestEvent[];
	kmStderr: string;
	echo: GuestEvent[];
	/** The near namespace's counters during the run (after minus before; absolute in recordings older than the before section). */
	xfrmStat: Record<string, number>;
	/** How the probe's peer's counters moved during the run: what it refused to take in clear shows here. */
	peerXfrmStat: Record<string, number>;
	/** What each fault step printed. */
	duringOutput: string[];
	/** With an IKE daemon: which, and each instance's log for this run, near side (the initiator) first. */
	ikeLogs?: { daemon: IkeDaemonName; logs: Array<{ ns: string; log: string }> };
	/** The case script's whole output, what caseRunOf() read: kept for recording (tests/fixtures/record-oracle.ts). */
	guestOutput: string;
}

/** Who keys the topology: the test key manager (far side static, near side on ACQUIRE) or an IKE daemon (charon, pluto) on each side. */
export type LabKeying = 'test' | IkeDaemonName;

/** Where guest-side logs and scratch files of a lab live. */
export const RUN_DIR = '/run/larval';

/** Whether the guest's kernel has the series' switch, net.core.xfrm_resolve. */
export async function kernelHasResolve(vm: Vm): Promise<boolean> {
	return (await vm.exec('test -e /proc/sys/net/core/xfrm_resolve', { timeoutMs: 10_000 })).code === 0;
}

/** The sysctls a mode or case may change, at their defaults; reset before every case.  xfrm_resolve exists only on patched kernels. */
export const SYSCTL_DEFAULTS: Readonly<Record<string, number>> = {
	'net.core.xfrm_larval_drop': 1,
	'net.core.xfrm_resolve': 0,
	'net.core.xfrm_acq_expires': 30,
};

export interface RunOptions {
	/** Ping until the key manager has installed the SAs, so the probe measures the keyed path. */
	keyedFirst?: boolean;
	/**
	 * The probe runs on the far side, towards the key manager's host, whose
	 * inbound SA is installed beforehand: what waits for the SA is then the
	 * reply the near kernel generates (echo reply, RST), not a socket's packet.
	 */
	fromServer?: boolean;
	/** Faults injected while the probe runs: each command starts in the background @afterMs into the probe. */
	during?: readonly DuringStep[];
	/** A firewall in every namespace of the topology for this run (harness/net/firewall.ts). */
	firewall?: Firewall;
}

/** A shell command a case runs beside its probe (flush the SAs, flip a sysctl, ...), as root in the guest. */
export interface DuringStep {
	afterMs: number;
	run: (t: Topology) => string;
}

/** The far side's name server (larval-echo --dns): answers every query with "no records". */
export const DNS_PORT = 53;

export function probeArgs(peer: string, p: ProbeSpec): string[] {
	if (p.resolver) {
		if (p.family !== 4) throw new Error('the resolver case is IPv4 only');
		return ['larval-resolve', '--server', peer, '--port', String(DNS_PORT), '--timeout-s', String(Math.max(1, Math.round((p.timeoutMs ?? 2000) / 1000))), '--attempts', '2'];
	}
	const args = ['larval-probe', '--family', String(p.family), '--proto', p.proto, '--peer', peer, '--mode', p.mode];
	if (p.proto === 'tcp' || p.proto === 'udp') args.push('--port', String(ECHO_PORT));
	if (p.proto === 'raw') args.push('--raw-proto', String(RAW_PROTO));
	if (p.count !== undefined) args.push('--count', String(p.count));
	if (p.intervalMs !== undefined) args.push('--interval-ms', String(p.intervalMs));
	if (p.timeoutMs !== undefined) args.push('--timeout-ms', String(p.timeoutMs));
	if (p.sndtimeoMs !== undefined) args.push('--sndtimeo-ms', String(p.sndtimeoMs));
	if (p.shutdownAfterMs !== undefined) args.push('--shutdown-after-ms', String(p.shutdownAfterMs));
	if (p.closeAfterMs !== undefined) args.push('--close-after-ms', String(p.closeAfterMs));
	if (p.noConnect) args.push('--no-connect');
	if (p.pollBeforeSend) args.push('--poll-before-send');
	if (p.waitPollout) args.push('--wait-pollout');
	if (p.reconnectWaitMs !== undefined) args.push('--reconnect', p.family === 4 ? '127.0.0.1' : '::1', '--reconnect-wait-ms', String(p.reconnectWaitMs));
	for (const s of p.sockopts ?? []) args.push('--sockopt', s);
	return args;
}

export function kmArgs(keys: string, log: string, b: KmBehaviour, maxRuntimeS = 120): string[] {
	const args = ['larval-km', '--keys', keys, '--log', log, '--max-runtime-s', String(maxRuntimeS)];
	if (b.never) args.push('--never');
	if (b.delayMs !== undefined) args.push('--delay-ms', String(b.delayMs));
	if (b.deleteAfterMs !== undefined) args.push('--delete-after-ms', String(b.deleteAfterMs));
	if (b.exitAfterFirst) args.push('--exit-after-first');
	return args;
}

/** Splits the case script's output into its `=== name` sections. */
export function splitSections(out: string): Map<string, string> {
	const sections = new Map<string, string>();
	let name = '';
	let lines: string[] = [];
	for (const line of out.split('\n')) {
		const m = /^=== ([a-z0-9_-]+)$/.exec(line);
		if (m) {
			if (name) sections.set(name, lines.join('\n'));
			name = m[1]!;
			lines = [];
		} else if (name) lines.push(line);
	}
	if (name) sections.set(name, lines.join('\n'));
	return sections;
}

/** @after - @before per counter (counters of a namespace the runs share only grow). */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
	return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

export function parseXfrmStat(text: string): Record<string, number> {
	const out: Record<string, number> = {};
	for (const line of text.split('\n')) {
		const m = /^(\w+)\s+(\d+)$/.exec(line.trim());
		if (m) out[m[1]!] = Number(m[2]);
	}
	return out;
}

/**
 * A case run from its script's output (the `=== name` sections of Lab.run):
 * pure, so that a recorded guest output replays through the same code
 * (tests/unit/oracle.test.ts).  @shape: how many fault steps ran, and the
 * IKE daemon and its instances' namespaces, near side first (none with the test key manager).
 */
export function caseRunOf(stdout: string, shape: { during: number; ike?: { daemon: IkeDaemonName; ns: readonly string[] } }, stderr = ''): CaseRun {
	const s = splitSections(stdout);
	if (s.has('not-ready')) throw new LarvalError(`case set-up failed in the guest: ${s.get('not-ready')!.trim()}`, stderr);
	const tapText = s.get('probe') ?? '';
	return {
		tap: parseTap(tapText),
		tapText,
		probeStatus: Number(s.get('probe-status')?.trim() ?? NaN),
		probeStderr: s.get('probe-stderr')?.trim() ?? '',
		km: parseEventLog(s.get('km') ?? ''),
		kmStderr: s.get('km-stderr')?.trim() ?? '',
		echo: parseEventLog(s.get('echo') ?? ''),
		xfrmStat: counterDelta(parseXfrmStat(s.get('xfrm-stat-before') ?? ''), parseXfrmStat(s.get('xfrm-stat') ?? '')),
		peerXfrmStat: counterDelta(parseXfrmStat(s.get('peer-xfrm-stat-before') ?? ''), parseXfrmStat(s.get('peer-xfrm-stat') ?? '')),
		duringOutput: Array.from({ length: shape.during }, (_, i) => s.get(`during-${i}`)?.trim() ?? ''),
		ikeLogs: shape.ike ? { daemon: shape.ike.daemon, logs: shape.ike.ns.map((ns, i) => ({ ns, log: s.get(`ike-${i}`) ?? '' })) } : undefined,
		guestOutput: stdout,
	};
}

function echoServers(t: Topology): Array<{ name: string; args: string[] }> {
	const servers = [];
	for (const family of [4, 6] as Family[]) {
		for (const proto of ['tcp', 'udp', 'raw'] as const) {
			const name = `echo-${t.name}-${proto}${family}`;
			const args = ['larval-echo', '--family', String(family), '--proto', proto, '--log', `${RUN_DIR}/${name}.log`, '--max-runtime-s', '7200'];
			args.push(...(proto === 'raw' ? ['--raw-proto', String(RAW_PROTO)] : ['--port', String(ECHO_PORT)]));
			servers.push({ name, args });
		}
	}
	const dns = `echo-${t.name}-dns4`;
	servers.push({ name: dns, args: ['larval-echo', '--family', '4', '--proto', 'udp', '--port', String(DNS_PORT), '--dns', '--log', `${RUN_DIR}/${dns}.log`, '--max-runtime-s', '7200'] });
	return servers;
}

/**
 * Waits (bounded) until no TCP socket of the case is between LISTEN and
 * TIME_WAIT, so that no FIN or ACK of this case is still in flight when the
 * next one flushes the SAs: such a packet would send an ACQUIRE that the
 * next case's key manager answers, and that case would look fast.
 */
function settleTcp(namespaces: readonly string[]): string {
	const busy = namespaces
		.map((ns) => `ip netns exec ${ns} cat /proc/net/tcp /proc/net/tcp6`)
		.join('; ');
	// Column 4 is the state: 0A LISTEN, 06 TIME_WAIT, 07 CLOSE.
	return `n=0; while [ $n -lt 100 ] && { ${busy}; } | awk 'NR>1 && $4!="st" && $4!="0A" && $4!="06" && $4!="07" {f=1} END {exit !f}'; do sleep 0.02; n=$((n+1)); done`;
}

/**
 * Stops every key manager and waits for it to be gone: one left running
 * answers the next case's ACQUIRE and makes it look fast.  (Debian's busybox
 * has no pkill/pgrep; killall and pidof it has.)  SIGKILL after 2 s.
 */
export function stopKeyManagers(): string {
	return [
		'killall -TERM larval-km 2>/dev/null',
		'n=0; while pidof larval-km >/dev/null && [ $n -lt 100 ]; do sleep 0.02; n=$((n+1)); done',
		'killall -KILL larval-km 2>/dev/null',
		'n=0; while pidof larval-km >/dev/null && [ $n -lt 50 ]; do sleep 0.02; n=$((n+1)); done',
		'if pidof larval-km >/dev/null; then echo "=== not-ready"; echo "a key manager survived SIGKILL"; exit 92; fi',
	].join('\n');
}

/** Shell: the near side of @t back to policies only, with no key manager running and no SA. */
export function nearReset(t: Topology): string[] {
	const ns = t.kmNamespace;
	return [stopKeyManagers(), `ip -n ${ns} xfrm policy flush`, `ip -n ${ns} xfrm state flush`, ...t.nearPolicies];
}

/**
 * Shell: waits until @counter of /proc/net/xfrm_stat in @ns reaches
 * @atLeast, polling every 50 ms, at most @tries times; it goes on either
 * way (the caller's checks say what it found).
 */
export function untilXfrmCounter(ns: string, counter: string, atLeast: number | string, tries: number): string {
	return `i=0; while [ "$(ip netns exec ${ns} awk '$1 == "${counter}" { print $2 }' /proc/net/xfrm_stat)" -lt ${atLeast} ] && [ $i -lt ${tries} ]; do sleep 0.05; i=$((i + 1)); done`;
}

/**
 * Sets a run's sysctls in @ns, from the defaults: a mode sets only what it
 * changes, and the last run's settings must not carry over.  A sysctl the
 * kernel lacks ends the script as not ready.
 */
export function sysctlSteps(ns: string, sysctls: Readonly<Record<string, string | number>>): string[] {
	return [
		...Object.entries(SYSCTL_DEFAULTS).map(([k, v]) => `[ -e /proc/sys/${k.replace(/\./g, '/')} ] && ip netns exec ${ns} sysctl -qw ${k}=${v}`),
		...Object.entries(sysctls).map(([k, v]) => `ip netns exec ${ns} sysctl -qw ${shellJoin([`${k}=${v}`])} || { echo "=== not-ready"; echo "sysctl ${k} is missing"; exit 91; }`),
	];
}

function keyUp(ns: string, peer: string): string {
	return `n=0; until ip netns exec ${ns} ping -c 1 -W 1 ${peer} >/dev/null 2>&1; do n=$((n+1)); [ $n -ge 5 ] && { echo "=== not-ready"; echo "no SA after 5 pings"; exit 93; }; done`;
}

export function background(ns: string, args: readonly string[], stderr: string): string {
	// setsid + redirections: the ssh channel closes while the program runs on.
	return `ip netns exec ${ns} setsid ${shellJoin(args)} </dev/null >/dev/null 2>${stderr} &`;
}

/** Shell: `up` prints seconds since boot with centisecond resolution (busybox's date has no %N). */
export const UPTIME_FN = 'up() { read u _ </proc/uptime; echo "$u"; }';

/**
 * Shell: each set-up command, or the "=== not-ready" section that names the
 * command that failed and what it printed (@errFile holds its stderr).
 */
export function setUpOrNotReady(cmds: readonly string[], errFile: string): string[] {
	return cmds.map((c) => `${c} 2>${errFile} || { echo "=== not-ready"; echo ${shellJoin([c])}; cat ${errFile}; exit 94; }`);
}

export function waitForReady(log: string, what: string, tries = 200): string {
	return [
		`i=0; until grep -q READY ${log} 2>/dev/null; do`,
		`  i=$((i + 1)); [ $i -gt ${tries} ] && { echo "=== not-ready"; echo "${what}"; cat ${log}.err 2>/dev/null; exit 90; }`,
		'  sleep 0.02; done',
	].join('\n');
}

/**
 * A topology set up in a booted guest, with its echo servers running: the
 * place where cases run, one guest serving many cases.  Each case starts
 * from flushed SAs and a fresh key manager, so no ACQUIRE, larval state or
 * SA of one case can make the next look fast.
 */
export class Lab {
	/** @ike: the IKE daemon's instances, one per side; none with the test key manager. */
	/**
	 * @timeScale multiplies the harness's own time limits (not the probes'
	 * or the cases' bounds): a debug kernel (KASAN, lockdep) under TCG runs
	 * a case ten times slower.
	 */
	private constructor(readonly vm: Vm, readonly topo: Topology, readonly keying: LabKeying, private readonly ike: IkeKeying | undefined, readonly timeScale: number) {}

	/** A run with a firewall did not come back: its ruleset may still be loaded, and the next run removes it first. */
	private firewallMayBeLoaded = false;

	/** Loads @fw in every namespace of the topology, for `larval exec --firewall` (runs load theirs themselves). */
	async loadFirewall(fw: Firewall): Promise<void> {
		this.firewallMayBeLoaded = true;
		await this.runSetUp(firewallLoad(this.topo, fw, RUN_DIR), `loading the ${fw} firewall`);
	}

	/**
	 * With an IKE daemon only the network is built: the daemons install every
	 * policy (trap) and negotiate every SA, on both sides.
	 */
	static async setUp(vm: Vm, topo: Topology, keying: LabKeying = 'test', timeScale = 1): Promise<Lab> {
		const keys = `${RUN_DIR}/keys-${topo.name}`;
		const ike = keying === 'test' ? undefined : ikeKeying(keying, topo);
		const keyingSetup = ike
			? [...topo.network, ...ike.configure]
			: [...topo.setup, `cat > ${keys} <<'KEYS'\n${keyingTable(topo)}KEYS`];
		const script = [
			'set -e',
			`mkdir -p ${RUN_DIR}`,
			...keyingSetup,
			...echoServers(topo).map((s) => background(topo.server.ns, s.args, `${RUN_DIR}/${s.name}.log.err`)),
			...echoServers(topo).map((s) => waitForReady(`${RUN_DIR}/${s.name}.log`, `${s.name} did not start`)),
		].join('\n');
		const r = await vm.exec(script, { timeoutMs: 120_000 * timeScale });
		if (r.code !== 0) {
			throw new LarvalError(`setting up the ${topo.name} topology failed (status ${r.code})`, `${r.stdout}${r.stderr}`.trim());
		}
		return new Lab(vm, topo, keying, ike, timeScale);
	}

	peer(family: Family): string {
		return this.address(this.topo.server, family);
	}

	/** Where the key manager of this topology logs, in the guest (the near side's instance, with an IKE daemon). */
	get kmLog(): string {
		return this.ike ? this.ike.logs[0]!.log : `${RUN_DIR}/km-${this.topo.name}.log`;
	}

	/** Every IKE daemon instance's namespace and log, in the guest (none with the test key manager). */
	get ikeLogs(): Array<{ ns: string; log: string }> {
		return this.ike?.logs ?? [];
	}

	/**
	 * The steps of a run that depend on who keys: back to no SA and no
	 * policy but the near side's, start the key manager(s), stop them, print
	 * their logs.  Stock's per-policy hold queue is emptied only by deleting
	 * the policy, so every run starts from flushed policies.
	 */
	private keyingSteps(km: KmBehaviour): { reset: string[]; start: string[]; stop: string[]; report: string[] } {
		const t = this.topo;
		const ike = this.ike;
		if (ike) {
			return {
				reset: [...ike.stop, ...ike.logs.flatMap((c) => [`ip -n ${c.ns} xfrm policy flush`, `ip -n ${c.ns} xfrm state flush`])],
				start: ike.start,
				// Left running: the next run (or `larval exec`'s command) stops them.
				stop: [],
				// Sections are lower-case (splitSections): numbered, not named after the namespace.
				report: ike.report.map((cat, i) => `echo "=== ike-${i}"; ${cat}`),
			};
		}
		const ns = t.kmNamespace;
		return {
			reset: this.nearResetSteps(),
			start: this.testKmStart(km),
			stop: [stopKeyManagers()],
			report: [`echo "=== km"; cat ${this.kmLog}`, `echo "=== km-stderr"; cat ${this.kmLog}.err`],
		};
	}

	/**
	 * Back to the near side as set up, with the test key manager: none
	 * running, no SA, no policy but the topology's own.
	 */
	nearResetSteps(): string[] {
		return nearReset(this.topo);
	}

	/** Starts the IKE daemon on each side with its connections, for `larval exec --km strongswan|libreswan`. */
	async startIkeDaemon(): Promise<void> {
		const steps = this.keyingSteps({});
		await this.runSetUp([...steps.reset, ...steps.start], `starting ${this.ike?.daemon.label ?? 'no IKE daemon'}`);
	}

	private async runSetUp(lines: readonly string[], what: string): Promise<void> {
		const r = await this.vm.exec(lines.join('\n'), { timeoutMs: 60_000 * this.timeScale });
		const s = splitSections(r.stdout);
		if (r.code !== 0 || s.has('not-ready')) throw new LarvalError(`${what} failed: ${s.get('not-ready')?.trim() ?? `status ${r.code}`}`, r.stderr);
	}

	/**
	 * Starts the test key manager in its namespace and waits for it to be
	 * ready, outside any case (`larval exec --topology`): it answers every
	 * ACQUIRE from the keying table until it has run @maxRuntimeS.
	 */
	async startKeyManager(km: KmBehaviour, maxRuntimeS: number): Promise<void> {
		await this.runSetUp([stopKeyManagers(), ...this.testKmStart(km, maxRuntimeS)], 'starting the key manager');
	}

	private testKmStart(km: KmBehaviour, maxRuntimeS?: number): string[] {
		const t = this.topo;
		return [
			`rm -f ${this.kmLog}`,
			background(t.kmNamespace, kmArgs(`${RUN_DIR}/keys-${t.name}`, this.kmLog, km, maxRuntimeS), `${this.kmLog}.err`),
			waitForReady(this.kmLog, 'larval-km did not start'),
		];
	}

	private address(h: Host, family: Family): string {
		return family === 4 ? h.v4 : h.v6;
	}

	/**
	 * Runs one case as a single guest script (each ssh round trip costs
	 * ~0.1 s under TCG): reset, sysctls, key manager, probe, logs.
	 */
	async run(
		probe: ProbeSpec,
		km: KmBehaviour,
		sysctls: Readonly<Record<string, string | number>>,
		opts: RunOptions = {},
	): Promise<CaseRun> {
		const t = this.topo;
		const ns = t.kmNamespace;
		if (opts.fromServer && t.client.ns !== ns) throw new LarvalError(`probes from the server side need the key manager on the client (${t.name} has it in ${ns})`);
		if (opts.fromServer && this.ike) throw new LarvalError(`probes from the server side need the far side's static SAs, which ${this.ike.daemon.label} labs do not have`);
		const peerNs = opts.fromServer ? t.client.ns : t.server.ns;
		const [probeNs, target] = opts.fromServer ? [t.server.ns, this.address(t.client, probe.family)] : [t.client.ns, this.peer(probe.family)];
		const inbound = t.nearStates.filter((s) => s.dst === this.address(t.client, probe.family));
		const keying = this.keyingSteps(km);
		const echoLogs = echoServers(t).map((s) => `${RUN_DIR}/${s.name}.log`);
		const timeoutMs = ((probe.timeoutMs ?? 2000) * 3 + (probe.count ?? 3) * (probe.intervalMs ?? 0) + 20_000) * this.timeScale;
		const firewall = [
			...(this.firewallMayBeLoaded ? firewallUnload(t) : []),
			...(opts.firewall ? firewallLoad(t, opts.firewall, RUN_DIR) : []),
		];
		const script = [
			'set -u',
			...keying.reset,
			...firewall,
			...sysctlSteps(ns, sysctls),
			...keying.start,
			...(opts.keyedFirst ? [keyUp(t.client.ns, this.peer(probe.family))] : []),
			...(opts.fromServer ? inbound.map((s) => `ip -n ${ns} ${shellJoin(stateAdd(s))}`) : []),
			...echoLogs.map((l, i) => `e${i}=$(wc -l < ${l})`),
			`ip netns exec ${peerNs} cat /proc/net/xfrm_stat >${RUN_DIR}/peer-stat-before`,
			`ip netns exec ${ns} cat /proc/net/xfrm_stat >${RUN_DIR}/stat-before`,
			...(opts.during ?? []).map((d, i) => `( sleep ${(d.afterMs / 1000).toFixed(3)}; ${d.run(t)} ) >${RUN_DIR}/during-${i}.out 2>&1 & d${i}=$!`),
			`ip netns exec ${probeNs} ${shellJoin(probeArgs(target, probe))} >${RUN_DIR}/probe.tap 2>${RUN_DIR}/probe.err; st=$?`,
			// A fault step outliving the probe would change the next case: stopped here, and its output reported.
			...(opts.during ?? []).map((_, i) => `kill $d${i} 2>/dev/null; wait $d${i} 2>/dev/null`),
			settleTcp([t.client.ns, t.server.ns]),
			...keying.stop,
			'echo "=== probe-status"; echo $st',
			`echo "=== probe"; cat ${RUN_DIR}/probe.tap`,
			`echo "=== probe-stderr"; cat ${RUN_DIR}/probe.err`,
			...keying.report,
			'echo "=== echo"',
			...echoLogs.map((l, i) => `tail -n +$((e${i} + 1)) ${l}`),
			`echo "=== xfrm-stat-before"; cat ${RUN_DIR}/stat-before`,
			`echo "=== xfrm-stat"; ip netns exec ${ns} cat /proc/net/xfrm_stat`,
			`echo "=== peer-xfrm-stat-before"; cat ${RUN_DIR}/peer-stat-before`,
			`echo "=== peer-xfrm-stat"; ip netns exec ${peerNs} cat /proc/net/xfrm_stat`,
			...(opts.during ?? []).map((_, i) => `echo "=== during-${i}"; cat ${RUN_DIR}/during-${i}.out`),
			...(opts.firewall ? ['echo "=== firewall"', ...firewallReport(t), ...firewallUnload(t)] : []),
		].join('\n');
		this.firewallMayBeLoaded = this.firewallMayBeLoaded || opts.firewall !== undefined;
		const r = await this.vm.exec(script, { timeoutMs });
		this.firewallMayBeLoaded = false;
		return caseRunOf(r.stdout, { during: opts.during?.length ?? 0, ike: this.ike && { daemon: this.ike.daemon.name, ns: this.ike.logs.map((c) => c.ns) } }, r.stderr);
	}
}
