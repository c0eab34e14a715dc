import { shellJoin } from '../util/shell.js';
import { aeadKey, type Family, keyingLine, policyAdd, type PolicySpec, stateAdd, type StateSpec, type XfrmMode } from './xfrm.js';

/**
 * Network topologies built inside one guest with network namespaces and veth
 * pairs, like the kernel's own net selftests.  The far side is always fully
 * keyed; the near side (`kmNamespace`) has policies only and gets its SAs
 * from the key manager, so every first packet meets a missing SA there.
 *
 * Addresses are from the documentation ranges (RFC 5737, RFC 3849): nothing
 * here can be mistaken for, or routed to, a real network.
 */
export type TopologyName = 'transport' | 'tunnel';

export interface Host {
	ns: string;
	v4: string;
	v6: string;
}

export interface Topology {
	name: TopologyName;
	/** Where probes run, and where their packets first meet the policy (transport) or a gateway (tunnel). */
	client: Host;
	/** Where the echo server runs. */
	server: Host;
	/** Namespace whose SAs the key manager installs; xfrm sysctls are set here. */
	kmNamespace: string;
	/** All namespaces, in creation order. */
	namespaces: string[];
	/** The SAs the key manager may install (its keying table). */
	nearStates: StateSpec[];
	/** Shell commands that build it, one per line: the network, the far side's SAs and policies, the near side's policies. */
	setup: string[];
	/** The network alone (namespaces, links, routes), for a key manager that negotiates both sides and installs every policy itself. */
	network: string[];
	/** Per family, the two IPsec peers and what they protect: what an IKE daemon on each side is configured with. */
	ike: IkeLink[];
	/**
	 * The near side's policies, apart from setup: a case flushes and re-adds
	 * them, which is the only way to empty stock's per-policy hold queue
	 * (its timer would otherwise keep sending ACQUIREs for the last case).
	 */
	nearPolicies: string[];
	/** Namespaces that forward between a protected network and IPsec, with the device on the protected side (for firewalls). */
	gateways: Array<{ ns: string; insideDev: string }>;
}

/** One IPsec peer: its namespace, its IKE/ESP address, the traffic it protects. */
export interface IkePeer {
	ns: string;
	addr: string;
	subnet: string;
}

export interface IkeLink {
	family: Family;
	mode: XfrmMode;
	/** The key manager's side (kmNamespace), which initiates on the first packet. */
	near: IkePeer;
	far: IkePeer;
}

const KEY_OUT = aeadKey('0x0102030405060708090a0b0c0d0e0f1011121314');
const KEY_IN = aeadKey('0x15161718191a1b1c1d1e1f2021222324252627ff');

interface LinkEnd {
	ns: string;
	dev: string;
	mac: string;
	v4: string;
	v6: string;
}

function ip(ns: string, ...args: string[]): string {
	return shellJoin(['ip', '-n', ns, ...args]);
}

function sysctl(ns: string, name: string, value: string): string {
	return shellJoin(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `${name}=${value}`]);
}

function nsSetup(ns: string, forwarding: boolean): string[] {
	return [
		shellJoin(['ip', 'netns', 'add', ns]),
		ip(ns, 'link', 'set', 'lo', 'up'),
		// Ping sockets are per namespace and off by default.
		sysctl(ns, 'net.ipv4.ping_group_range', '0 2147483647'),
		...(forwarding ? [sysctl(ns, 'net.ipv4.ip_forward', '1'), sysctl(ns, 'net.ipv6.conf.all.forwarding', '1')] : []),
	];
}

/**
 * A veth pair with static neighbour entries on both ends: no ARP or
 * neighbour discovery, whose timing (and whose ICMPv6 matching a wide
 * policy) would blur what the probes measure.
 */
function link(a: LinkEnd, b: LinkEnd, prefix4: number, prefix6: number): string[] {
	const cmds = [ip(a.ns, 'link', 'add', a.dev, 'address', a.mac, 'type', 'veth', 'peer', 'name', b.dev, 'address', b.mac, 'netns', b.ns)];
	for (const [me, peer] of [[a, b], [b, a]] as const) {
		cmds.push(
			ip(me.ns, 'addr', 'add', `${me.v4}/${prefix4}`, 'dev', me.dev),
			ip(me.ns, '-6', 'addr', 'add', `${me.v6}/${prefix6}`, 'dev', me.dev, 'nodad'),
			ip(me.ns, 'link', 'set', me.dev, 'up'),
			ip(me.ns, 'neigh', 'replace', peer.v4, 'lladdr', peer.mac, 'dev', me.dev, 'nud', 'permanent'),
			ip(me.ns, '-6', 'neigh', 'replace', peer.v6, 'lladdr', peer.mac, 'dev', me.dev, 'nud', 'permanent'),
		);
	}
	return cmds;
}

function pairOfStates(src: string, dst: string, mode: StateSpec['mode'], reqid: number, spiBase: number): [StateSpec, StateSpec] {
	return [
		{ src, dst, spi: spiBase + 0x1000, mode, reqid, key: KEY_OUT },
		{ src: dst, dst: src, spi: spiBase + 0x2000, mode, reqid, key: KEY_IN },
	];
}

function host(ns: string, v4: string, v6: string): Host {
	return { ns, v4, v6 };
}

export function transportTopology(): Topology {
	const a: LinkEnd = { ns: 'A', dev: 'a0', mac: '02:00:00:00:00:0a', v4: '192.0.2.1', v6: '2001:db8:1::1' };
	const b: LinkEnd = { ns: 'B', dev: 'b0', mac: '02:00:00:00:00:0b', v4: '192.0.2.2', v6: '2001:db8:1::2' };
	const network = [...nsSetup('A', false), ...nsSetup('B', false), ...link(a, b, 24, 64)];
	const setup = [...network];
	const nearStates: StateSpec[] = [];
	const nearPolicies: string[] = [];
	const ike: IkeLink[] = [];
	for (const fam of [4, 6] as Family[]) {
		const [sa, sb] = fam === 4 ? [a.v4, b.v4] : [a.v6, b.v6];
		const reqid = fam === 4 ? 4 : 6;
		const states = pairOfStates(sa, sb, 'transport', reqid, fam);
		nearStates.push(...states);
		const host32 = fam === 4 ? 32 : 128;
		ike.push({ family: fam, mode: 'transport', near: { ns: 'A', addr: sa, subnet: `${sa}/${host32}` }, far: { ns: 'B', addr: sb, subnet: `${sb}/${host32}` } });
		const tmpl = { mode: 'transport' as const, reqid };
		const pol = (dir: PolicySpec['dir'], src: string, dst: string): PolicySpec => ({ dir, src: `${src}/${host32}`, dst: `${dst}/${host32}`, tmpl });
		// B is fully keyed.
		for (const s of states) setup.push(ip('B', ...stateAdd(s)));
		setup.push(ip('B', ...policyAdd(pol('out', sb, sa))), ip('B', ...policyAdd(pol('in', sa, sb))));
		// A has policies only: its SAs come from the key manager.
		nearPolicies.push(ip('A', ...policyAdd(pol('out', sa, sb))), ip('A', ...policyAdd(pol('in', sb, sa))));
	}
	setup.push(...nearPolicies);
	return {
		name: 'transport',
		client: host('A', a.v4, a.v6),
		server: host('B', b.v4, b.v6),
		kmNamespace: 'A',
		namespaces: ['A', 'B'],
		nearStates,
		setup,
		network,
		ike,
		nearPolicies,
		gateways: [],
	};
}

export function tunnelTopology(): Topology {
	const ha: LinkEnd = { ns: 'HA', dev: 'ha0', mac: '02:00:00:00:01:0a', v4: '198.51.100.2', v6: '2001:db8:a::2' };
	const gaIn: LinkEnd = { ns: 'GA', dev: 'ga0', mac: '02:00:00:00:01:01', v4: '198.51.100.1', v6: '2001:db8:a::1' };
	const gaOut: LinkEnd = { ns: 'GA', dev: 'ga1', mac: '02:00:00:00:02:0a', v4: '192.0.2.1', v6: '2001:db8:1::1' };
	const gbOut: LinkEnd = { ns: 'GB', dev: 'gb1', mac: '02:00:00:00:02:0b', v4: '192.0.2.2', v6: '2001:db8:1::2' };
	const gbIn: LinkEnd = { ns: 'GB', dev: 'gb0', mac: '02:00:00:00:03:01', v4: '203.0.113.1', v6: '2001:db8:b::1' };
	const hb: LinkEnd = { ns: 'HB', dev: 'hb0', mac: '02:00:00:00:03:0b', v4: '203.0.113.2', v6: '2001:db8:b::2' };
	const network = [
		...nsSetup('HA', false),
		...nsSetup('GA', true),
		...nsSetup('GB', true),
		...nsSetup('HB', false),
		...link(ha, gaIn, 24, 64),
		...link(gaOut, gbOut, 24, 64),
		...link(gbIn, hb, 24, 64),
		ip('HA', 'route', 'add', 'default', 'via', gaIn.v4),
		ip('HA', '-6', 'route', 'add', 'default', 'via', gaIn.v6),
		ip('HB', 'route', 'add', 'default', 'via', gbIn.v4),
		ip('HB', '-6', 'route', 'add', 'default', 'via', gbIn.v6),
		ip('GA', 'route', 'add', '203.0.113.0/24', 'via', gbOut.v4),
		ip('GA', '-6', 'route', 'add', '2001:db8:b::/64', 'via', gbOut.v6),
		ip('GB', 'route', 'add', '198.51.100.0/24', 'via', gaOut.v4),
		ip('GB', '-6', 'route', 'add', '2001:db8:a::/64', 'via', gaOut.v6),
	];
	const setup = [...network];
	const nearStates: StateSpec[] = [];
	const nearPolicies: string[] = [];
	const ike: IkeLink[] = [];
	for (const fam of [4, 6] as Family[]) {
		const [ga, gb] = fam === 4 ? [gaOut.v4, gbOut.v4] : [gaOut.v6, gbOut.v6];
		const [netA, netB] = fam === 4 ? ['198.51.100.0/24', '203.0.113.0/24'] : ['2001:db8:a::/64', '2001:db8:b::/64'];
		const reqid = fam === 4 ? 14 : 16;
		ike.push({ family: fam, mode: 'tunnel', near: { ns: 'GA', addr: ga, subnet: netA }, far: { ns: 'GB', addr: gb, subnet: netB } });
		const states = pairOfStates(ga, gb, 'tunnel', reqid, 0x10 + fam);
		nearStates.push(...states);
		const aToB = { mode: 'tunnel' as const, src: ga, dst: gb, reqid };
		const bToA = { mode: 'tunnel' as const, src: gb, dst: ga, reqid };
		for (const s of states) setup.push(ip('GB', ...stateAdd(s)));
		setup.push(
			ip('GB', ...policyAdd({ dir: 'out', src: netB, dst: netA, tmpl: bToA })),
			ip('GB', ...policyAdd({ dir: 'in', src: netA, dst: netB, tmpl: aToB })),
			ip('GB', ...policyAdd({ dir: 'fwd', src: netA, dst: netB, tmpl: aToB })),
		);
		nearPolicies.push(
			ip('GA', ...policyAdd({ dir: 'out', src: netA, dst: netB, tmpl: aToB })),
			ip('GA', ...policyAdd({ dir: 'in', src: netB, dst: netA, tmpl: bToA })),
			ip('GA', ...policyAdd({ dir: 'fwd', src: netB, dst: netA, tmpl: bToA })),
		);
	}
	setup.push(...nearPolicies);
	return {
		name: 'tunnel',
		client: host('HA', ha.v4, ha.v6),
		server: host('HB', hb.v4, hb.v6),
		kmNamespace: 'GA',
		namespaces: ['HA', 'GA', 'GB', 'HB'],
		nearStates,
		setup,
		network,
		ike,
		nearPolicies,
		gateways: [{ ns: 'GA', insideDev: gaIn.dev }, { ns: 'GB', insideDev: gbIn.dev }],
	};
}

export function topology(name: TopologyName): Topology {
	return name === 'transport' ? transportTopology() : tunnelTopology();
}

/** The key manager's keying table for a topology. */
export function keyingTable(t: Topology): string {
	return `# ${t.name}: SAs the key manager installs in ${t.kmNamespace}\n${t.nearStates.map(keyingLine).join('\n')}\n`;
}
