import type { Topology } from '../net/topology.js';
import { stateAdd } from '../net/xfrm.js';
import { parseTap } from '../probe/tap.js';
import { textTable } from '../report/table.js';
import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { median, spread } from '../util/stats.js';
import type { Vm } from '../vm/vm.js';
import type { Mode } from './cases.js';
import { RUN_DIR, splitSections, sysctlSteps, waitForReady } from './lab.js';
import { num } from './outcome.js';

/** How long the sender sends per blast: long enough that a timer tick or an ssh round trip is noise. */
export const BLAST_MS = 2000;
/**
 * Blasts per boot and setting, of which the fastest counts: other guests
 * on the host only ever take CPU time away from this one, so the best of
 * a few is the closest to the kernel's own rate.
 */
export const BLASTS_PER_BOOT = 2;
/** Payload per datagram: small, so the per-packet path (lookup, ESP), not copying, dominates. */
export const BLAST_PAYLOAD = 64;
/** Not the echo servers' port: their logging would be the bottleneck. */
const BLAST_PORT = 7100;
/** Issue #7: the series may cost the fast path at most this much. */
export const FAST_PATH_TARGET = 0.02;

/** One blast of larval-blast: a sender in the near namespace, a receiver on the far host. */
export interface PpsRun {
	sent: number;
	received: number;
	sendErrors: number;
	firstErrno: string;
	durationMs: number;
	sentPps: number;
	receivedPps: number;
	problems: string[];
}

/** Types blast @i's sections; pure, for unit tests. */
export function ppsRunOf(s: Map<string, string>, i = 0): PpsRun {
	const send = parseTap(s.get(`send-${i}`) ?? '');
	const recv = parseTap(s.get(`recv-${i}`) ?? '');
	const sp = send.points.find((p) => p.name === 'send');
	const rp = recv.points.find((p) => p.name === 'receive');
	const sd = sp?.diag ?? {};
	const rd = rp?.diag ?? {};
	const problems: string[] = [];
	if (!send.complete || !sp) problems.push(`sender TAP incomplete${send.bailout ? `: ${send.bailout}` : ''}`);
	if (!recv.complete || !rp) problems.push(`receiver TAP incomplete${recv.bailout ? `: ${recv.bailout}` : ''}`);
	const sent = num(sd.sent, 0);
	const received = num(rd.received, 0);
	const durationMs = (num(sd.end_ns) - num(sd.start_ns)) / 1e6;
	if (sp && !(durationMs > 0)) problems.push('the sender reported no duration');
	if (sent && !received) problems.push(`none of ${sent} datagrams arrived`);
	return {
		sent,
		received,
		sendErrors: num(sd.errors, 0),
		firstErrno: String(sd.first_errno ?? ''),
		durationMs,
		sentPps: durationMs > 0 ? sent / (durationMs / 1000) : NaN,
		// What arrived after the sender stopped was sent within its time.
		receivedPps: durationMs > 0 ? received / (durationMs / 1000) : NaN,
		problems,
	};
}

/** The blast with the most datagrams received, failed blasts last. */
export function bestBlast(runs: readonly PpsRun[]): PpsRun {
	const ok = runs.filter((r) => !r.problems.length);
	return ok.length ? ok.reduce((a, b) => (b.receivedPps > a.receivedPps ? b : a)) : runs[0]!;
}

/**
 * Sets up @topo with the near side's SAs installed up front (no acquire,
 * no larval route: the path every packet takes once keyed), then blasts
 * once per entry of @modes (set in the near namespace as the cases set
 * them) for BLAST_MS from the client to the server, counting what
 * arrives; returns every blast, in order.
 */
export async function measurePps(vm: Vm, topo: Topology, modes: readonly Mode[]): Promise<PpsRun[]> {
	const blast = (...role: string[]) => ['larval-blast', '--family', '4', '--port', String(BLAST_PORT), '--size', String(BLAST_PAYLOAD), ...role];
	const oneBlast = (mode: Mode, i: number) => {
		const recvTap = `${RUN_DIR}/blast-recv-${i}.tap`;
		const sendTap = `${RUN_DIR}/blast-send-${i}.tap`;
		return [
			...sysctlSteps(topo.kmNamespace, mode.sysctls),
			`ip netns exec ${topo.server.ns} ${shellJoin(blast('--recv'))} >${recvTap} 2>&1 & r=$!`,
			waitForReady(recvTap, 'larval-blast --recv did not start'),
			`ip netns exec ${topo.client.ns} ${shellJoin(blast('--send', '--peer', topo.server.v4, '--duration-ms', String(BLAST_MS)))} >${sendTap} 2>&1`,
			// Datagrams still queued towards the receiver arrive within this.
			'sleep 0.3',
			'kill -TERM $r; wait $r',
			`echo "=== send-${i}"; cat ${sendTap}`,
			`echo "=== recv-${i}"; cat ${recvTap}`,
		];
	};
	const script = [
		'set -u',
		`mkdir -p ${RUN_DIR}`,
		`{ ${topo.setup.join(' && ')}; } >${RUN_DIR}/setup.err 2>&1 || { echo "=== not-ready"; cat ${RUN_DIR}/setup.err; exit 95; }`,
		...topo.nearStates.map((s) => `ip -n ${topo.kmNamespace} ${shellJoin(stateAdd(s))} || { echo "=== not-ready"; echo "near SA"; exit 95; }`),
		...modes.flatMap(oneBlast),
	].join('\n');
	const r = await vm.exec(script, { timeoutMs: modes.length * (BLAST_MS + 30_000) + 60_000 });
	const s = splitSections(r.stdout);
	if (s.has('not-ready')) throw new LarvalError(`fast-path set-up failed in the guest: ${s.get('not-ready')!.trim()}`, r.stderr);
	return modes.map((_, i) => ppsRunOf(s, i));
}

export interface FastPathRow {
	kernel: string;
	mode: string;
	runs: number;
	sentPps: number | null;
	receivedPps: number | null;
	receivedMin: number | null;
	receivedMax: number | null;
	/** Against the baseline kernel: median of the per-round ratios (rounds pair the kernels' runs). */
	ratio: number | null;
	ratioMin: number | null;
	ratioMax: number | null;
	/** The same for datagrams sent: the sender's side alone (lookup, ESP), without the receiver's. */
	sentRatio: number | null;
	/**
	 * Received with the switch on against off, blasts alternating in the
	 * same boot: the cost of xfrm_resolve=1 alone, free of boot-to-boot and
	 * kernel-to-kernel noise (median over rounds); null without the switch.
	 */
	switchRatio: number | null;
	problems: string[];
}

export interface FastPathSample {
	kernel: string;
	mode: string;
	round: number;
	/** The boot's best blast in @mode (bestBlast). */
	pps: PpsRun;
	/**
	 * On a kernel with the series' switch: its best blast with the switch
	 * off, blasts of both settings alternating in the same boot.
	 */
	switchedOff?: PpsRun;
	/** Every blast of the boot. */
	blasts?: PpsRun[];
}

/**
 * Per kernel, the median and spread of its runs; per non-baseline kernel
 * the ratio to @baseline, taken round by round (each round boots every
 * kernel once, in turn) so that slow phases of the host hit both sides.
 */
export function summarizeFastPath(samples: readonly FastPathSample[], baseline: string): FastPathRow[] {
	const kernels = [...new Set(samples.map((x) => x.kernel))];
	const ok = samples.filter((x) => !x.pps.problems.length);
	const of = (k: string) => ok.filter((x) => x.kernel === k);
	const ratios = (k: string, f: (p: PpsRun) => number) =>
		of(k).flatMap((x) => {
			const b = of(baseline).find((y) => y.round === x.round);
			return b ? [f(x.pps) / f(b.pps)] : [];
		});
	return kernels.map((kernel) => {
		const mine = samples.filter((x) => x.kernel === kernel);
		const received = of(kernel).map((x) => x.pps.receivedPps);
		const range = spread(received);
		const r = kernel === baseline ? [] : ratios(kernel, (p) => p.receivedPps);
		const rr = spread(r);
		return {
			kernel,
			mode: mine[0]?.mode ?? '',
			runs: mine.length,
			sentPps: median(of(kernel).map((x) => x.pps.sentPps)),
			receivedPps: median(received),
			receivedMin: range?.min ?? null,
			receivedMax: range?.max ?? null,
			ratio: median(r),
			ratioMin: rr?.min ?? null,
			ratioMax: rr?.max ?? null,
			sentRatio: kernel === baseline ? null : median(ratios(kernel, (p) => p.sentPps)),
			switchRatio: median(of(kernel).flatMap((x) => (x.switchedOff && !x.switchedOff.problems.length ? [x.pps.receivedPps / x.switchedOff.receivedPps] : []))),
			problems: mine.flatMap((x) => x.pps.problems.map((p) => `round ${x.round}: ${p}`)),
		};
	});
}

function pps(x: number | null): string {
	return x === null ? 'n/a' : `${Math.round(x)}`;
}

function ratio(x: number | null): string {
	return x === null ? '-' : `${x.toFixed(3)}x`;
}

export function renderFastPath(rows: readonly FastPathRow[], baseline: string): string {
	return textTable(
		['kernel [mode]', 'runs', 'sent pps', 'received pps', 'received spread', `received / ${baseline}`, 'ratio spread', `sent / ${baseline}`, `within ${FAST_PATH_TARGET * 100}%`, 'switch on / off, same boot'],
		rows.map((r) => [
			`${r.kernel} [${r.mode}]`,
			`${r.runs}${r.problems.length ? ` (${r.problems.length} failed)` : ''}`,
			pps(r.sentPps),
			pps(r.receivedPps),
			r.receivedMin === null ? 'n/a' : `${pps(r.receivedMin)}..${pps(r.receivedMax)}`,
			ratio(r.ratio),
			r.ratioMin === null ? '-' : `${ratio(r.ratioMin)}..${ratio(r.ratioMax)}`,
			ratio(r.sentRatio),
			r.ratio === null ? '-' : r.ratio >= 1 - FAST_PATH_TARGET ? 'yes' : 'no',
			ratio(r.switchRatio),
		]),
	);
}
