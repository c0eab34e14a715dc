import type { TapPoint } from '../probe/tap.js';
import type { CaseRun } from './lab.js';
import { outboundInstallNs } from '../probe/event-log.js';
import type { Negotiation } from '../km/ike-common.js';
import { IKE_DAEMON, type IkeDaemonName } from '../km/ike-daemon.js';
import { tailLines } from '../util/errors.js';

/** One socket call as the probe saw it. */
export interface CallOutcome {
	ret: number;
	/** errno name, '' on success. */
	errno: string;
	ms: number;
}

/** What one run of a case showed, typed from the probe's TAP and the logs. */
export interface Outcome {
	/** setsockopt() calls, in order, by `level:name=value`. */
	sockopts: Array<CallOutcome & { option: string }>;
	connect?: CallOutcome;
	connectAgain?: CallOutcome;
	pollConnect?: { revents: string; waitedMs: number; soError: string };
	pollBeforeSend?: { revents: string };
	/** SO_ERROR (errno name, '' for none) after the socket connected elsewhere and waited (--reconnect). */
	soErrorAfter?: string;
	sends: CallOutcome[];
	sent: number;
	received: number;
	lost: number;
	firstReplyMs: number | null;
	rttMs: number[];
	acquires: number;
	installs: number;
	/**
	 * Packets the probe's peer refused for want of IPsec (its inbound
	 * policy requires ESP): what left in clear.  XfrmInTmplMismatch,
	 * XfrmInNoPols and XfrmInPolBlock of the peer's namespace during the run.
	 */
	clearAtPeer: number;
	/** The near namespace's xfrm counters during the run (/proc/net/xfrm_stat, after minus before). */
	nearCounters: Record<string, number>;
	/** ms from the probe's start to the key manager's NEWSA for the outbound SA. */
	installAtMs: number | null;
	/** The key manager's log, `<ms since probe start> KIND fields`, for reports and debugging. */
	kmLog: string[];
	/** Datagrams (1-based) that got no reply. */
	lostIds: number[];
	/** With an IKE daemon: which, what the near side's instance says of the negotiation, failures from both sides, and its log's tail. */
	ike?: Negotiation & { daemon: IkeDaemonName; tail: string };
	/** The probe printed a complete TAP stream and exited 0. */
	complete: boolean;
	problems: string[];
}

/** The peer's counters of packets that arrived in clear where its policy wants ESP. */
const CLEAR_COUNTERS = ['XfrmInTmplMismatch', 'XfrmInNoPols', 'XfrmInPolBlock'];

/** Lines of the near side's IKE daemon log a failed case shows. */
const IKE_TAIL_LINES = 25;

/** A number from a TAP YAML value (tap-parser gives numbers or strings), or @fallback. */
export function num(v: unknown, fallback = NaN): number {
	return typeof v === 'number' ? v : typeof v === 'string' && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : fallback;
}

function str(v: unknown): string {
	return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

function call(p: TapPoint | undefined): CallOutcome | undefined {
	if (!p || p.skip !== false) return undefined;
	return { ret: num(p.diag.ret), errno: str(p.diag.errno_name), ms: num(p.diag.duration_ms) };
}

export function outcomeOf(run: CaseRun): Outcome {
	const byName = (n: string) => run.tap.points.find((p) => p.name === n);
	const problems: string[] = [];
	if (!run.tap.complete) problems.push(`probe TAP incomplete${run.tap.bailout ? `: bail out: ${run.tap.bailout}` : ''}`);
	if (run.probeStatus !== 0) problems.push(`probe exited ${run.probeStatus}${run.probeStderr ? `: ${run.probeStderr}` : ''}`);
	for (const p of run.tap.points) if (!p.ok) problems.push(`probe step "${p.name}" not ok`);
	const poll = byName('poll_connect') ?? byName('wait_pollout');
	const before = byName('poll_before_send');
	const soAfter = byName('so_error_after');
	const recv = byName('recv')?.diag ?? {};
	const summary = byName('summary')?.diag ?? {};
	const probeStart = summary.probe_start_ns ?? recv.probe_start_ns;
	const installs = run.km.filter((e) => e.kind === 'INSTALL' && (e.fields.err ?? '0') === '0');
	const installedNs = outboundInstallNs(run.km);
	const ikeLogs = run.ikeLogs?.logs ?? [];
	const sides = ikeLogs.map((c) => IKE_DAEMON[run.ikeLogs!.daemon].negotiation(c.log));
	const startNs = typeof probeStart === 'number' || typeof probeStart === 'string' ? BigInt(Math.round(Number(probeStart))) : null;
	return {
		sockopts: run.tap.points.filter((p) => p.name.startsWith('sockopt ')).map((p) => ({ ...call(p)!, option: p.name.slice('sockopt '.length) })),
		connect: call(byName('connect')),
		connectAgain: call(byName('connect_again')),
		pollConnect: poll
			? { revents: str(poll.diag.revents), waitedMs: num(poll.diag.waited_ms), soError: str(poll.diag.so_error_name ?? poll.diag.socket_error_name) }
			: undefined,
		pollBeforeSend: before ? { revents: str(before.diag.revents) } : undefined,
		soErrorAfter: soAfter ? str(soAfter.diag.so_error_name) : undefined,
		sends: run.tap.points.filter((p) => /^send \d+$/.test(p.name)).map((p) => call(p)!),
		sent: num(recv.sent, 0),
		received: num(recv.received, 0),
		lost: num(recv.lost, 0),
		firstReplyMs: typeof recv.first_reply_ms === 'number' ? recv.first_reply_ms : null,
		rttMs: Array.isArray(recv.rtt_ms) ? (recv.rtt_ms as unknown[]).map((x) => num(x)) : [],
		lostIds: Array.isArray(recv.lost_ids) ? (recv.lost_ids as unknown[]).map((x) => num(x)) : [],
		ike: sides.length
			? { ...sides[0]!, daemon: run.ikeLogs!.daemon, failures: sides.flatMap((n, i) => n.failures.map((f) => `${ikeLogs[i]!.ns}: ${f}`)), tail: tailLines(ikeLogs[0]!.log, IKE_TAIL_LINES) }
			: undefined,
		acquires: run.km.filter((e) => e.kind === 'ACQUIRE').length,
		clearAtPeer: CLEAR_COUNTERS.reduce((n, k) => n + (run.peerXfrmStat[k] ?? 0), 0),
		nearCounters: run.xfrmStat,
		installs: installs.length,
		installAtMs: installedNs !== null && startNs !== null ? Number(installedNs - startNs) / 1e6 : null,
		kmLog: run.km.map((e) => `${startNs === null ? String(e.tNs) : (Number(e.tNs - startNs) / 1e6).toFixed(1)} ${e.kind} ${Object.entries(e.fields).map(([k, v]) => `${k}=${v}`).join(' ')}`),
		complete: problems.length === 0,
		problems,
	};
}

function round(ms: number): string {
	return Number.isFinite(ms) ? `${Math.round(ms)} ms` : '? ms';
}

/** A short, plain description of one run for a table cell. */
export function describeOutcome(o: Outcome): string {
	const parts: string[] = [];
	if (o.connect) {
		parts.push(`connect ${o.connect.errno || 0} in ${round(o.connect.ms)}`);
		if (o.connect.errno === 'EINPROGRESS' && o.pollConnect) {
			const err = o.pollConnect.soError ? ` ${o.pollConnect.soError}` : '';
			parts.push(`${o.pollConnect.revents || 'no event'}${err} after ${round(o.pollConnect.waitedMs)}`);
		}
	}
	if (o.pollBeforeSend) parts.push(`poll ${o.pollBeforeSend.revents || '0'}`);
	if (o.soErrorAfter !== undefined) parts.push(`SO_ERROR ${o.soErrorAfter || 0} after connecting elsewhere`);
	const failed = new Map<string, number>();
	for (const s of o.sends) if (s.errno) failed.set(s.errno, (failed.get(s.errno) ?? 0) + 1);
	if (failed.size) parts.push([...failed].map(([e, n]) => `${e}×${n}`).join(' '));
	if (o.sent > 0) {
		parts.push(o.received === 0 ? `lost ${o.lost}/${o.sent}` : o.lost ? `lost ${o.lost}/${o.sent}, first reply ${round(o.firstReplyMs ?? NaN)}` : `${o.received}/${o.sent} replied, first ${round(o.firstReplyMs ?? NaN)}`);
	}
	if (o.ike) parts.push(o.ike.ms === null ? 'no CHILD_SA' : `IKE ${Math.round(o.ike.ms)} ms`);
	if (o.clearAtPeer) parts.push(`${o.clearAtPeer} in clear at the peer`);
	// A few round trips tell the stale-queue story (each ~100 ms); more would crowd the cell.
	if (o.rttMs.length >= 2 && o.rttMs.length <= 5) parts.push(`rtt ${o.rttMs.map((r) => Math.round(r)).join('/')} ms`);
	if (!o.complete) parts.push('PROBE FAILED');
	return parts.join(', ');
}

/** What the program saw, in plain words, one line per fact: for `larval repro`. */
export function narrate(o: Outcome): string[] {
	const lines: string[] = [];
	const call = (what: string, c: CallOutcome) => `${what} = ${c.errno ? `-1 ${c.errno}` : c.ret} after ${round(c.ms)}`;
	if (o.connect) lines.push(call('connect()', o.connect));
	if (o.connectAgain) lines.push(call('connect() again', o.connectAgain));
	if (o.pollConnect) lines.push(`poll(POLLOUT) = ${o.pollConnect.revents || 'timeout'} after ${round(o.pollConnect.waitedMs)}${o.pollConnect.soError ? `, SO_ERROR ${o.pollConnect.soError}` : ''}`);
	if (o.pollBeforeSend) lines.push(`poll() right after connect() = ${o.pollBeforeSend.revents || 'nothing'}`);
	const acquire = o.kmLog.find((l) => / ACQUIRE /.test(l));
	if (o.ike) {
		const who = IKE_DAEMON[o.ike.daemon].label;
		lines.push(o.ike.ms === null ? `${who}: no CHILD_SA established${o.ike.failures.length ? ` (${o.ike.failures.join('; ')})` : ''}` : `${who}: ${o.ike.acquires} ACQUIRE, CHILD_SA established ${Math.round(o.ike.ms)} ms after the first`);
	} else lines.push(
		acquire
			? `key manager: ${o.acquires} ACQUIRE (first at ${acquire.split(' ')[0]} ms), ${o.installs ? `SAs installed at ${round(o.installAtMs ?? NaN)}` : 'no SA installed'}`
			: 'key manager: no ACQUIRE',
	);
	const byResult = new Map<string, number[]>();
	o.sends.forEach((s, i) => {
		const k = s.errno ? `-1 ${s.errno}` : `${s.ret} (success)`;
		byResult.set(k, [...(byResult.get(k) ?? []), i + 1]);
	});
	for (const [k, idx] of byResult) {
		const range = idx.length > 1 ? `sends ${idx[0]}..${idx.at(-1)}` : `send ${idx[0]}`;
		lines.push(`${range}: ${k}`);
	}
	if (o.sent > 0) {
		lines.push(
			o.received === 0
				? `peer: none of ${o.sent} came back: lost`
				: `peer: ${o.received} of ${o.sent} came back, first reply at ${round(o.firstReplyMs ?? NaN)}${o.rttMs.length ? `, round trips ${o.rttMs.map((r) => Math.round(r)).join('/')} ms` : ''}`,
		);
	}
	for (const p of o.problems) lines.push(`PROBLEM: ${p}`);
	return lines;
}
