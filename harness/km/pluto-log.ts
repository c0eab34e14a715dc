import type { Negotiation } from './ike-common.js';

/**
 * Reads pluto's log file as harness/km/libreswan.ts configures it
 * (logtime=yes): `Mon dd hh:mm:ss.uuuuuu: <message>`, the guest's local
 * wall clock without a year.  Only differences between stamps mean
 * anything here; a log that crosses New Year would read backwards.
 */
export interface PlutoLine {
	/** ms since the start of the (unstated) year, with the microseconds as a fraction. */
	tMs: number;
	text: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function parsePlutoLog(text: string): PlutoLine[] {
	const out: PlutoLine[] = [];
	for (const line of text.split('\n')) {
		const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}): (.*)$/.exec(line);
		const month = m ? MONTHS.indexOf(m[1]!) : -1;
		if (!m || month < 0) continue;
		const whole = Date.UTC(2000, month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])) - Date.UTC(2000, 0, 1);
		out.push({ tMs: whole + Number(m[6]) / 1000, text: m[7]! });
	}
	return out;
}

/** The kernel's ACQUIRE, as pluto logs it before initiating ("cannot initiate on-demand ..." is a failure, not this). */
const ACQUIRE = /^initiate on-demand for packet /;
/** `"v4" #2: initiator established Child SA using #1; IPsec transport ...`, logged once the SAs are in the kernel. */
const ESTABLISHED = /^"([^"]+)"(?:\[\d+\])? #(\d+): (?:initiator|responder) established Child SA/;

/**
 * Lines that say a negotiation failed.  Not every "ERROR:": at shutdown
 * pluto fails to delete the %hold shunts it never installed (4.10
 * implements them as no-ops) and says so, after every negotiation.
 */
const FAILURE = /TS_UNACCEPTABLE|NO_PROPOSAL_CHOSEN|AUTHENTICATION_FAILED|INVALID_SYNTAX|rejected Child SA|setup_half_ipsec_sa\(\) hit fail|netlink response for (Add|Update) SA|cannot initiate on-demand|timeout exceeded after \d+ retransmits|No response \(or no acceptable response\)|FATAL/;

/** What pluto's log says about the negotiation the first ACQUIRE started, in charon-log.ts's terms. */
export function plutoNegotiationOf(lines: readonly PlutoLine[]): Negotiation {
	const acquire = lines.filter((l) => ACQUIRE.test(l.text));
	const established = lines.filter((l) => ESTABLISHED.test(l.text));
	const start = acquire[0]?.tMs;
	const done = start === undefined ? undefined : established.find((l) => l.tMs >= start)?.tMs;
	return {
		ms: start !== undefined && done !== undefined ? Math.round((done - start) * 1000) / 1000 : null,
		acquires: acquire.length,
		established: established.map((l) => {
			const m = ESTABLISHED.exec(l.text)!;
			return `${m[1]} #${m[2]}`;
		}),
		failures: lines.filter((l) => FAILURE.test(l.text)).map((l) => l.text),
	};
}
