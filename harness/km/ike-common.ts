import type { IkeLink, Topology } from '../net/topology.js';

/**
 * What the IKE daemons (charon, pluto) share: one instance per side of the
 * topology, how one that will not start is reported, how one is stopped.
 */

export interface IkeSide {
	ns: string;
	side: 'near' | 'far';
	/** The links this side keys. */
	links: IkeLink[];
}

/** The near side first (the one that sees the ACQUIRE), then the far side. */
export function ikeSides(t: Topology): IkeSide[] {
	const near = t.ike[0]!.near.ns;
	const far = t.ike[0]!.far.ns;
	return ([[near, 'near'], [far, 'far']] as const).map(([ns, side]) => ({ ns, side, links: t.ike.filter((l) => (side === 'near' ? l.near.ns : l.far.ns) === ns) }));
}

/** A link's ends as @side sees them: its own first. */
export function ends(l: IkeLink, side: 'near' | 'far'): [IkeLink['near'], IkeLink['far']] {
	return side === 'near' ? [l.near, l.far] : [l.far, l.near];
}

const TAIL_LINES = 25;

/** What an IKE daemon's log says about the negotiation the first ACQUIRE started. */
export interface Negotiation {
	/**
	 * From the daemon reading the kernel's ACQUIRE to its line saying the
	 * CHILD_SA is established, which it logs once the SAs and policies are
	 * in the kernel: the time it took, IKE_SA_INIT and IKE_AUTH included.
	 */
	ms: number | null;
	acquires: number;
	/** CHILD_SAs established, by name (charon: "v4{1}", pluto: "v4 #2"). */
	established: string[];
	/** Lines that say a negotiation failed, verbatim. */
	failures: string[];
}

/**
 * Shell: the "=== not-ready" section Lab turns into an error: @program in
 * @ns, what went wrong, and the tail of @files (its log first), then exit @status.
 */
export function daemonNotReady(program: string, ns: string, what: string, files: readonly string[], status: number): string {
	return `{ echo "=== not-ready"; echo "${program} in ${ns}: ${what}; the tail of ${files[0]}:"; tail -n ${TAIL_LINES} ${files.join(' ')} 2>/dev/null; exit ${status}; }`;
}

/** Shell: SIGTERM to the pid in @pidFile, SIGKILL after 3 s, waiting (bounded) for it to be gone. */
export function stopByPidFile(pidFile: string): string {
	return `if [ -s ${pidFile} ]; then p=$(cat ${pidFile}); kill -TERM $p 2>/dev/null; n=0; while kill -0 $p 2>/dev/null && [ $n -lt 150 ]; do sleep 0.02; n=$((n+1)); done; kill -KILL $p 2>/dev/null; n=0; while kill -0 $p 2>/dev/null && [ $n -lt 50 ]; do sleep 0.02; n=$((n+1)); done; rm -f ${pidFile}; fi`;
}
