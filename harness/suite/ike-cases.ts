import { IKE_DAEMON, type IkeDaemonName } from '../km/ike-daemon.js';
import type { TopologyName } from '../net/topology.js';
import { all, allEchoed, allLost, type Case, type Check, connectReturns, probeRan, RTO_MIN, sendsSucceed } from './cases.js';
import type { Outcome } from './outcome.js';

/**
 * The same socket calls with a real IKE daemon keying both sides
 * (strongSwan's charon or libreswan's pluto): the first packet meets a trap
 * policy, the kernel's ACQUIRE starts an IKEv2 exchange, and what the
 * packet met is compared with how long the daemon says the negotiation
 * took (its log: ACQUIRE read to CHILD_SA established, which it logs once
 * the SAs are in the kernel).  The same cases for both daemons, ids
 * prefixed by the daemon's name.
 */

/**
 * Under TCG the kernel's ACQUIRE reaches the daemon a few ms after the packet,
 * and the daemon logs "established" some ms after the outbound SA (which
 * releases held packets) is in: a held packet's answer lands within this
 * window around the reported negotiation time.  Measured idle: the answer
 * 30 ms before to 60 ms after; the bounds leave room for a loaded machine.
 */
const EARLY_SLACK = 200;
const LATE_SLACK = 400;
/** The SYN lost twice (a negotiation over 1 s on a loaded machine): the third try at ~3 s. */
const RTO_MAX_TWICE = 7500;

const negotiated: Check = (o) => {
	const c = o.ike;
	if (!c) return ['no IKE daemon log'];
	if (c.ms !== null && c.failures.length === 0) return [];
	const d = IKE_DAEMON[c.daemon];
	return [`${d.label} did not establish the CHILD_SA${c.failures.length ? `: ${c.failures.join('; ')}` : ''}; the tail of ${d.program}'s log:\n${c.tail}`];
};

/** The first datagram was lost and a later one answered: the SA came up, the first packet met none. */
const firstLostLaterAnswered: Check = (o) => {
	const out: string[] = [];
	if (!o.lostIds.includes(1)) out.push(`datagram 1 was answered (lost: ${JSON.stringify(o.lostIds)}), expected it lost`);
	if (o.received === 0) out.push(`nothing answered of ${o.sent}, expected the datagrams after the negotiation to be`);
	return out;
};

/** When the first answer came, against the negotiation the daemon reports. */
const firstAnswerWithNegotiation = (answerMs: (o: Outcome) => number | null | undefined): Check => (o) => {
	const at = answerMs(o);
	const ike = o.ike?.ms;
	if (at === null || at === undefined || ike === null || ike === undefined) return [`no answer (${at}) or no negotiation time (${ike})`];
	return at >= ike - EARLY_SLACK && at <= ike + LATE_SLACK
		? []
		: [`first answer after ${Math.round(at)} ms, ${o.ike ? IKE_DAEMON[o.ike.daemon].label : '?'} negotiated in ${Math.round(ike)} ms: expected within -${EARLY_SLACK}..+${LATE_SLACK} ms of it`];
};

/** The SYN waited for TCP's retransmission, not for the SA: connect() outlasted the negotiation. */
const connectOutlastsNegotiation: Check = (o) => {
	const ike = o.ike?.ms;
	if (!o.connect || ike === null || ike === undefined) return ['no connect() or no negotiation time'];
	return o.connect.ms > ike ? [] : [`connect() took ${Math.round(o.connect.ms)} ms, not longer than the negotiation (${Math.round(ike)} ms)`];
};

const where = (t: TopologyName) => (t === 'tunnel' ? ', forwarded by a tunnel gateway' : '');
const prefix = (d: IkeDaemonName, t: TopologyName) => (t === 'tunnel' ? `${d}-tunnel` : d);

/** Three datagrams a second apart: the first meets the trap policy, the later ones the negotiated SA. */
const datagrams = (d: IkeDaemonName, topology: TopologyName, family: 4 | 6, proto: 'udp' | 'ping'): Case => ({
	id: `${prefix(d, topology)}-${proto}${family === 6 ? '6' : ''}`,
	title: `${IKE_DAEMON[d].label}: ${proto === 'ping' ? 'ICMP echo requests' : 'UDP datagrams'} over IPv${family}${where(topology)}, 1 s apart: the first meets the trap policy`,
	topology,
	probe: { family, proto, mode: 'block', count: 3, intervalMs: 1000 },
	km: {},
	stock: { 'larval_drop=1': all(probeRan, negotiated, sendsSucceed, firstLostLaterAnswered) },
	resolved: all(probeRan, negotiated, sendsSucceed, allEchoed(), firstAnswerWithNegotiation((o) => o.firstReplyMs)),
});

const tcpConnect = (d: IkeDaemonName, topology: TopologyName, family: 4 | 6): Case => ({
	id: `${prefix(d, topology)}-tcp${family === 6 ? '6' : ''}-connect`,
	title: `${IKE_DAEMON[d].label}: blocking TCP connect() over IPv${family}${where(topology)}: the SYN meets the trap policy`,
	topology,
	probe: { family, proto: 'tcp', mode: 'block', count: 1, timeoutMs: 8000 },
	km: {},
	stock: { 'larval_drop=1': all(probeRan, negotiated, connectReturns('', RTO_MIN, RTO_MAX_TWICE), connectOutlastsNegotiation, allEchoed()) },
	resolved: all(probeRan, negotiated, connectReturns(''), firstAnswerWithNegotiation((o) => o.connect?.ms), allEchoed()),
});

/** Transport between the hosts, then tunnel between the gateways: ping, TCP connect(), UDP over IPv4 and IPv6. */
export function ikeCases(d: IkeDaemonName): readonly Case[] {
	return (['transport', 'tunnel'] as const).flatMap((t) => [datagrams(d, t, 4, 'ping'), tcpConnect(d, t, 4), datagrams(d, t, 4, 'udp'), datagrams(d, t, 6, 'udp')]);
}

export const STRONGSWAN_CASES = ikeCases('strongswan');
export const LIBRESWAN_CASES = ikeCases('libreswan');
