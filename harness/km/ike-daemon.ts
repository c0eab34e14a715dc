import type { Topology } from '../net/topology.js';
import { negotiationOf, parseCharonLog } from './charon-log.js';
import type { Negotiation } from './ike-common.js';
import { plutoInstances, plutoLog, startPlutos, stopPlutos, writePlutoConfigs } from './libreswan.js';
import { parsePlutoLog, plutoNegotiationOf } from './pluto-log.js';
import { charonInstances, charonLog, startCharons, stopCharons, writeConfigs } from './strongswan.js';

/**
 * The real IKE daemons the harness runs as key managers, one instance per
 * side of a topology: strongSwan's charon (harness/km/strongswan.ts) and
 * libreswan's pluto (harness/km/libreswan.ts).  What a lab needs of either:
 * shell to configure, start and stop them, where they log, and how to read
 * the negotiation from a log.
 */
export type IkeDaemonName = 'strongswan' | 'libreswan';
export const IKE_DAEMONS: readonly IkeDaemonName[] = ['strongswan', 'libreswan'];

export interface IkeDaemon {
	name: IkeDaemonName;
	/** The project's own spelling, for people: strongSwan, libreswan. */
	label: string;
	/** The daemon's program: charon, pluto. */
	program: string;
	negotiation(log: string): Negotiation;
}

/** A daemon's instances for one topology, as shell for the guest. */
export interface IkeKeying {
	daemon: IkeDaemon;
	/** Each instance's namespace and log in the guest, near side (the initiator) first. */
	logs: Array<{ ns: string; log: string }>;
	/** Writes the configuration (once per lab). */
	configure: string[];
	start: string[];
	/** SIGTERM, then SIGKILL, bounded: none may answer the next case's ACQUIRE. */
	stop: string[];
	/** Per instance (same order as logs): prints its log and stderr. */
	report: string[];
}

export const IKE_DAEMON: Readonly<Record<IkeDaemonName, IkeDaemon>> = {
	strongswan: { name: 'strongswan', label: 'strongSwan', program: 'charon', negotiation: (log) => negotiationOf(parseCharonLog(log)) },
	libreswan: { name: 'libreswan', label: 'libreswan', program: 'pluto', negotiation: (log) => plutoNegotiationOf(parsePlutoLog(log)) },
};

export function ikeKeying(name: IkeDaemonName, t: Topology): IkeKeying {
	if (name === 'strongswan') {
		const cs = charonInstances(t);
		return {
			daemon: IKE_DAEMON.strongswan,
			logs: cs.map((c) => ({ ns: c.ns, log: charonLog(c) })),
			configure: writeConfigs(cs),
			start: startCharons(cs),
			stop: stopCharons(cs),
			report: cs.map((c) => `cat ${charonLog(c)} ${c.dir}/charon.err 2>/dev/null`),
		};
	}
	const ps = plutoInstances(t);
	return {
		daemon: IKE_DAEMON.libreswan,
		logs: ps.map((p) => ({ ns: p.ns, log: plutoLog(p) })),
		configure: writePlutoConfigs(ps),
		start: startPlutos(ps),
		stop: stopPlutos(ps),
		report: ps.map((p) => `cat ${plutoLog(p)} ${p.dir}/pluto.err 2>/dev/null`),
	};
}
