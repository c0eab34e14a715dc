import type { TopologyName } from '../net/topology.js';
import { all, allEchoed, allLost, type Case, type Check, connectReturns, probeRan, RTO_MIN, sendsSucceed } from './cases.js';
import type { Outcome } from './outcome.js';

/**
 * The same socket calls with strongSwan keying both sides: the first packet
 * meets a trap policy, the kernel's ACQUIRE starts an IKEv2 exchange, and
 * what the packet met is compared with how long strongSwan says the
 * negotiation took (charon's log: ACQUIRE read to CHILD_SA established,
 * which it logs once the SAs are in the kernel).
 */

/**
 * Under TCG the kernel's ACQUIRE reaches charon a few ms after the packet,
 * and charon logs "established" some ms after the outbound SA (which
 * releases held packets) is in: a held packet's answer lands within this
 * window around the reported negotiation time.  Measured idle: the answer
 * 30 ms before to 60 ms after; the bounds leave room for a loaded machine.
 */
const EARLY_SLACK = 200;
const LATE_SLACK = 400;
/** The SYN lost twice (a negotiation over 1 s on a loaded machine): the third try at ~3 s. */
const RTO_MAX_TWICE = 7500;

const negotiated: Check = (o) => {
	const c = o.charon;
	if (!c) return ['no charon log'];
	if (c.ms !== null && c.failures.length === 0) return [];
	return [`strongSwan did not establish the CHILD_SA${c.failures.length ? `: ${c.failures.join('; ')}` : ''}; the tail of charon's log:\n${c.tail}`];
};

/** The first datagram was lost and a later one answered: the SA came up, the first packet met none. */
const firstLostLaterAnswered: Check = (o) => {
	const out: string[] = [];
	if (!o.lostIds.includes(1)) out.push(`datagram 1 was answered (lost: ${JSON.stringify(o.lostIds)}), expected it lost`);
	if (o.received === 0) out.push(`nothing answered of ${o.sent}, expected the datagrams after the negotiation to be`);
	return out;
};

/** When the first answer came, against the negotiation strongSwan reports. */
const firstAnswerWithNegotiation = (answerMs: (o: Outcome) => number | null | undefined): Check => (o) => {
	const at = answerMs(o);
	const ike = o.charon?.ms;
	if (at === null || at === undefined || ike === null || ike === undefined) return [`no answer (${at}) or no negotiation time (${ike})`];
	return at >= ike - EARLY_SLACK && at <= ike + LATE_SLACK
		? []
		: [`first answer after ${Math.round(at)} ms, strongSwan negotiated in ${Math.round(ike)} ms: expected within -${EARLY_SLACK}..+${LATE_SLACK} ms of it`];
};

/** The SYN waited for TCP's retransmission, not for the SA: connect() outlasted the negotiation. */
const connectOutlastsNegotiation: Check = (o) => {
	const ike = o.charon?.ms;
	if (!o.connect || ike === null || ike === undefined) return ['no connect() or no negotiation time'];
	return o.connect.ms > ike ? [] : [`connect() took ${Math.round(o.connect.ms)} ms, not longer than the negotiation (${Math.round(ike)} ms)`];
};

const where = (t: TopologyName) => (t === 'tunnel' ? ', forwarded by a tunnel gateway' : '');
const prefix = (t: TopologyName) => (t === 'tunnel' ? 'strongswan-tunnel' : 'strongswan');

/** Three datagrams a second apart: the first meets the trap policy, the later ones the negotiated SA. */
const datagrams = (topology: TopologyName, family: 4 | 6, proto: 'udp' | 'ping'): Case => ({
	id: `${prefix(topology)}-${proto}${family === 6 ? '6' : ''}`,
	title: `strongSwan: ${proto === 'ping' ? 'ICMP echo requests' : 'UDP datagrams'} over IPv${family}${where(topology)}, 1 s apart: the first meets the trap policy`,
	topology,
	probe: { family, proto, mode: 'block', count: 3, intervalMs: 1000 },
	km: {},
	stock: { 'larval_drop=1': all(probeRan, negotiated, sendsSucceed, firstLostLaterAnswered) },
	resolved: all(probeRan, negotiated, sendsSucceed, allEchoed(), firstAnswerWithNegotiation((o) => o.firstReplyMs)),
});

const tcpConnect = (topology: TopologyName, family: 4 | 6): Case => ({
	id: `${prefix(topology)}-tcp${family === 6 ? '6' : ''}-connect`,
	title: `strongSwan: blocking TCP connect() over IPv${family}${where(topology)}: the SYN meets the trap policy`,
	topology,
	probe: { family, proto: 'tcp', mode: 'block', count: 1, timeoutMs: 8000 },
	km: {},
	stock: { 'larval_drop=1': all(probeRan, negotiated, connectReturns('', RTO_MIN, RTO_MAX_TWICE), connectOutlastsNegotiation, allEchoed()) },
	resolved: all(probeRan, negotiated, connectReturns(''), firstAnswerWithNegotiation((o) => o.connect?.ms), allEchoed()),
});

export const STRONGSWAN_CASES: readonly Case[] = [
	datagrams('transport', 4, 'ping'),
	tcpConnect('transport', 4),
	datagrams('transport', 4, 'udp'),
	datagrams('transport', 6, 'udp'),
	datagrams('tunnel', 4, 'ping'),
	tcpConnect('tunnel', 4),
	datagrams('tunnel', 4, 'udp'),
	datagrams('tunnel', 6, 'udp'),
];
