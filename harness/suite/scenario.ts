import { type Firewall, FIREWALL_TABLE } from '../net/firewall.js';
import { topology, type TopologyName } from '../net/topology.js';
import { UsageError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import type { Vm } from '../vm/vm.js';
import { IKE_DAEMONS, type IkeDaemonName } from '../km/ike-daemon.js';
import { type KmBehaviour, kernelHasResolve, Lab } from './lab.js';

export type KeyManagerChoice = 'test' | IkeDaemonName | 'none';
const KEY_MANAGERS: readonly KeyManagerChoice[] = ['test', ...IKE_DAEMONS, 'none'];

/** Whether @km is a real IKE daemon (strongSwan, libreswan), which keys both sides. */
export function isIkeDaemon(km: KeyManagerChoice | undefined): km is IkeDaemonName {
	return (IKE_DAEMONS as readonly string[]).includes(km ?? '');
}

export interface ScenarioOptions {
	topology?: TopologyName;
	km?: KeyManagerChoice;
	/** Run the command (or the shell) inside this network namespace. */
	ns?: string;
	/**
	 * net.core.xfrm_resolve in every namespace of the topology.  Unset: 1
	 * where the kernel has the series' switch (so the same command shows
	 * stock and the series side by side), nothing on other kernels.
	 */
	resolve?: 0 | 1;
	/** A firewall in every namespace of the topology (harness/net/firewall.ts). */
	firewall?: Firewall;
}

/** What `larval exec` and `larval shell` wrap a command in, once the guest is set up. */
export interface Scenario {
	/** PEER and PEER6 (the far host of the topology), PATH with --with programs first. */
	env: Record<string, string>;
	/** The command line to run, with the environment and the namespace. */
	wrap(argv: readonly string[]): string;
	/** A login profile for `larval shell`: the same environment and namespace. */
	profile(): string;
	/** One line for the user: what is set up where. */
	summary: string;
	/** With --km strongswan|libreswan: which, and each instance's namespace and log in the guest, to keep after the command. */
	ikeLogs?: { daemon: IkeDaemonName; logs: Array<{ ns: string; log: string }> };
}

/**
 * The test key manager as `larval exec` runs it: it answers 50 ms after
 * each ACQUIRE, as in the cases (an instant answer can race the first
 * packet and hide what the kernel does with it).
 */
export const EXEC_KM: KmBehaviour = { delayMs: 50 };
const EXEC_KM_RUNTIME_S = 4 * 3600;

export function parseTopologyName(v: string): TopologyName {
	if (v !== 'transport' && v !== 'tunnel') throw new UsageError(`--topology must be transport or tunnel, not ${v}`);
	return v;
}

export function parseResolve(v: string): 0 | 1 {
	if (v !== '0' && v !== '1') throw new UsageError(`--resolve must be 0 or 1, not ${v}`);
	return v === '1' ? 1 : 0;
}

export function parseKeyManager(v: string): KeyManagerChoice {
	if (!(KEY_MANAGERS as readonly string[]).includes(v)) throw new UsageError(`--km must be ${KEY_MANAGERS.slice(0, -1).join(', ')} or none, not ${v}`);
	return v as KeyManagerChoice;
}

/** /etc/hosts lines that name the far host PEER (IPv4) and PEER6 (IPv6). */
export function peerHostsLines(v4: string, v6: string): string {
	return `${v4}\tPEER peer\n${v6}\tPEER6 peer6\n`;
}

/** Applies --resolve (or its default) to every namespace; the value set, or null on a kernel without the switch. */
async function setResolve(vm: Vm, namespaces: readonly string[], wanted: 0 | 1 | undefined): Promise<0 | 1 | null> {
	const has = await kernelHasResolve(vm);
	if (!has) {
		if (wanted !== undefined) throw new UsageError('--resolve: this kernel has no net.core.xfrm_resolve (only the patched kernel does)');
		return null;
	}
	const value = wanted ?? 1;
	await vm.run(namespaces.map((ns) => `ip netns exec ${shellJoin([ns])} sysctl -qw net.core.xfrm_resolve=${value}`).join(' && '));
	return value;
}

/**
 * Sets up what the command line asked for in a booted guest: the topology
 * with its SAs and policies and echo servers, the key manager, the peers'
 * names, and checks that the namespace to run in exists.
 */
export async function setUpScenario(vm: Vm, opts: ScenarioOptions): Promise<Scenario> {
	const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
	let summary = 'no topology';
	let ikeLogs: Scenario['ikeLogs'];
	if (opts.km && opts.km !== 'none' && !opts.topology) throw new UsageError('--km needs --topology: the key manager answers for a topology\'s SAs');
	if (opts.firewall && !opts.topology) throw new UsageError('--firewall needs --topology: the ruleset is loaded in the topology\'s namespaces');
	if (opts.firewall && isIkeDaemon(opts.km)) throw new UsageError('--firewall stateful admits no IKE: use it with --km test or none');
	if (opts.topology) {
		const km = opts.km ?? 'test';
		const lab = await Lab.setUp(vm, topology(opts.topology), isIkeDaemon(km) ? km : 'test');
		const t = lab.topo;
		const resolve = await setResolve(vm, t.namespaces, opts.resolve);
		env.PEER = t.server.v4;
		env.PEER6 = t.server.v6;
		await vm.run(`cat >> /etc/hosts`, { stdin: Buffer.from(peerHostsLines(t.server.v4, t.server.v6)) });
		if (km === 'test') await lab.startKeyManager(EXEC_KM, EXEC_KM_RUNTIME_S);
		if (isIkeDaemon(km)) await lab.startIkeDaemon();
		if (opts.firewall) await lab.loadFirewall(opts.firewall);
		const logs = lab.ikeLogs;
		if (isIkeDaemon(km)) ikeLogs = { daemon: km, logs };
		summary = `${t.name} topology: namespaces ${t.namespaces.join(', ')}; the probe side is ${t.client.ns}, PEER=${t.server.v4}, PEER6=${t.server.v6}; ` + {
			test: `test key manager in ${t.kmNamespace} (answers 50 ms after each ACQUIRE, log ${lab.kmLog})`,
			strongswan: `strongSwan: charon in ${logs.map((c) => c.ns).join(' and ')}, IKEv2 PSK, trap policies (logs ${logs.map((c) => c.log).join(', ')})`,
			libreswan: `libreswan: pluto in ${logs.map((c) => c.ns).join(' and ')}, IKEv2 PSK, auto=ondemand trap policies (logs ${logs.map((c) => c.log).join(', ')})`,
			none: `no key manager in ${t.kmNamespace}`,
		}[km] + (resolve === null ? '' : `; net.core.xfrm_resolve=${resolve} (--resolve ${1 - resolve} for ${resolve ? 'stock behaviour' : 'the series'})`) +
			(opts.firewall ? `; ${opts.firewall} firewall in every namespace (nft list table inet ${FIREWALL_TABLE})` : '');
	}
	// An ssh round trip (~0.1 s under TCG) that only --ns needs.
	if (opts.ns) {
		const list = await vm.exec('ip netns list', { timeoutMs: 10_000 });
		const namespaces = list.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
		if (!namespaces.includes(opts.ns)) {
			throw new UsageError(`--ns ${opts.ns}: no network namespace ${opts.ns} in the guest (${namespaces.length ? `there are: ${namespaces.join(', ')}` : 'there are none: add --topology'})`);
		}
	}
	const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shellJoin([v])}`).join('; ');
	const enter = opts.ns ? `ip netns exec ${shellJoin([opts.ns])} ` : '';
	return {
		env,
		ikeLogs,
		summary: opts.ns ? `${summary}; running in ${opts.ns}` : summary,
		wrap: (argv) => `${exports}; exec ${enter}${shellJoin(argv)}`,
		// Entered once: the shell started inside the namespace is not a login shell and does not read this again.
		profile: () => `${exports}\n${opts.ns ? `exec ${enter}/bin/bash -i\n` : ''}`,
	};
}
