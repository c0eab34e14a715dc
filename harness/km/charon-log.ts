import type { Negotiation } from './ike-common.js';

/**
 * Reads charon's file log as harness/km/strongswan.ts configures it:
 * `<epoch seconds>.<ms> <thread>[<GROUP>] <message>`.  The stamps are the
 * guest's wall clock, so only differences between them mean anything here.
 */
export interface CharonLine {
	tMs: number;
	group: string;
	text: string;
}

export function parseCharonLog(text: string): CharonLine[] {
	const out: CharonLine[] = [];
	for (const line of text.split('\n')) {
		const m = /^(\d+)\.(\d{3}) \d+\[(\w+)\] (.*)$/.exec(line);
		if (m) out.push({ tMs: Number(m[1]) * 1000 + Number(m[2]), group: m[3]!, text: m[4]! });
	}
	return out;
}


const FAILURE = /failed to establish CHILD_SA|establishing IKE_SA failed|giving up after \d+ retransmits|NO_PROPOSAL_CHOSEN|AUTHENTICATION_FAILED|TS_UNACCEPTABLE|unable to (add|install) (SAD|policy)|no IKE config found|no matching CHILD_SA config/;

/** What charon's log says about the negotiation the first ACQUIRE started. */
export function negotiationOf(lines: readonly CharonLine[]): Negotiation {
	const acquire = lines.filter((l) => l.group === 'KNL' && /^creating acquire job/.test(l.text));
	const established = lines.filter((l) => l.group === 'IKE' && /^CHILD_SA \S+ established/.test(l.text));
	const start = acquire[0]?.tMs;
	const done = start === undefined ? undefined : established.find((l) => l.tMs >= start)?.tMs;
	return {
		ms: start !== undefined && done !== undefined ? done - start : null,
		acquires: acquire.length,
		established: established.map((l) => l.text.split(' ')[1]!),
		failures: lines.filter((l) => FAILURE.test(l.text)).map((l) => l.text),
	};
}
