import type { KernelTarget } from '../kernel/target.js';
import { type Topology, topology } from '../net/topology.js';
import { aeadKey, policyAdd, stateAdd } from '../net/xfrm.js';
import { parseTap } from '../probe/tap.js';
import { textTable } from '../report/table.js';
import { LarvalError } from '../util/errors.js';
import { progress } from '../util/progress.js';
import { shellJoin } from '../util/shell.js';
import { median, spread } from '../util/stats.js';
import { bootGuest } from '../vm/guest.js';
import type { Vm } from '../vm/vm.js';
import { RESOLVE_1 } from './cases.js';
import { RUN_DIR, kernelHasResolve, splitSections, sysctlSteps, waitForReady } from './lab.js';
import { num } from './outcome.js';

/**
 * Guest instructions per socket call, counted by QEMU's instruction
 * counter (larval-insns, qemu-args.ts ICOUNT): the fast path's cost with
 * the SA in place, free of the host's load, so that a few instructions per
 * packet show instead of hiding in the packet rate's noise.
 */
export const INSN_OPS = ['sendto', 'send', 'poll', 'tcp-rr'] as const;
export type InsnOp = (typeof INSN_OPS)[number];
export const INSN_FAMILIES = [4, 6] as const;
/**
 * Calls per batch, per call: about 50 million instructions each, so that a
 * batch spans some fifty timer ticks and their share of it is the same in
 * every batch (with 1,000 polls, 0.8 ms of guest time, a batch held no tick
 * or one, and its count moved by 0.5 %).
 */
export const INSN_OPS_PER_BATCH: Readonly<Record<InsnOp, number>> = { sendto: 2500, send: 2500, poll: 50_000, 'tcp-rr': 500 };
/** Batches per measurement, calls before the first batch. */
export const INSN_BATCHES = 5;
export const INSN_WARMUP = 200;
/** Payload per call: small, so that the per-packet path dominates. */
export const INSN_PAYLOAD = 64;
/** The echo peers' ports: one per family (a v6 wildcard bind would take the v4 port too). */
const ECHO_PORT: Record<4 | 6, number> = { 4: 7200, 6: 7201 };
/** The UDP calls' port at the dead end (nothing listens: the dummy device frees every packet). */
const DEAD_END_PORT = 7202;
/**
 * The UDP calls' peer: an address per family (documentation ranges)
 * routed from the client's namespace to a dummy device, behind a policy
 * and an SA of its own, so that each datagram goes through the route and
 * policy lookup and ESP and is then freed at the device.  A real receiver
 * in the same guest would add its softirq, whose batching of packets
 * moved unconnected sendto()'s count by 1 % from batch to batch and by
 * 2 % between two settings of one boot (the first version of this bench).
 */
export const DEAD_END = { dev: 'insns0', v4: '198.51.100.9', v6: '2001:db8:9::9' } as const;
const DEAD_END_KEY = aeadKey('0x9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d');

/** Shell lines that add the dead end to @topo's client namespace. */
export function deadEndSetup(topo: Topology): string[] {
	const ns = topo.client.ns;
	const lines = [`ip -n ${ns} link add ${DEAD_END.dev} type dummy`, `ip -n ${ns} link set ${DEAD_END.dev} up`];
	for (const family of INSN_FAMILIES) {
		const [src, dst, bits] = family === 4 ? [topo.client.v4, DEAD_END.v4, 32] : [topo.client.v6, DEAD_END.v6, 128];
		const reqid = 90 + family;
		lines.push(
			`ip -n ${ns} -${family} route add ${dst}/${bits} dev ${DEAD_END.dev}`,
			`ip -n ${ns} ${shellJoin(stateAdd({ src, dst, spi: 0x9000 + family, mode: 'transport', reqid, key: DEAD_END_KEY }))}`,
			`ip -n ${ns} ${shellJoin(policyAdd({ dir: 'out', src: `${src}/${bits}`, dst: `${dst}/${bits}`, tmpl: { mode: 'transport', reqid } }))}`,
		);
	}
	return lines;
}
/**
 * The contract's targets (issue #19): with the switch off the series adds
 * nothing (1.000 within the measured spread); with it on and the SA in
 * place, at most 0.1 % more.
 */
export const SWITCH_OFF_TARGET = 1.0;
export const SWITCH_ON_TARGET = 1.001;

/**
 * Where the measurement stands: stock has no switch; on the series' kernel
 * `off` is measured first in every boot, before anything enabled SA
 * resolution (0019's static key is never switched off again), then `on`.
 */
export type InsnSetting = 'stock' | 'off' | 'on';

export interface InsnStep {
	setting: InsnSetting;
	sysctls: Readonly<Record<string, string | number>>;
}

export interface InsnRun {
	op: InsnOp;
	family: 4 | 6;
	/** Calls per batch. */
	ops: number;
	/** Instructions per call, one per batch. */
	perCall: number[];
	/** The guest's CLOCK_MONOTONIC over the batches: under ICOUNT, nanoseconds and instructions are one. */
	monotonicNs: number;
	errors: number;
	firstErrno: string;
	problems: string[];
}

export interface InsnSample {
	kernel: string;
	round: number;
	setting: InsnSetting;
	runs: InsnRun[];
}

const key = (op: InsnOp, family: number) => `${op}-v${family}`;

/** Types one measurement's TAP; pure, for unit tests. */
export function insnRunOf(tapText: string, op: InsnOp, family: 4 | 6): InsnRun {
	const tap = parseTap(tapText);
	const p = tap.points.find((x) => x.name === op);
	const d = p?.diag ?? {};
	const problems: string[] = [];
	if (!tap.complete || !p) problems.push(`larval-insns --op ${op} (IPv${family}): TAP incomplete${tap.bailout ? `: ${tap.bailout}` : ''}`);
	const ops = num(d.ops, 0);
	const tsc = Array.isArray(d.tsc) ? d.tsc.map((t) => Number(t)) : [];
	if (p && (!ops || !tsc.length || !tsc.every((t) => t > 0))) problems.push(`larval-insns --op ${op} (IPv${family}) reported no counts`);
	const errors = num(d.errors, 0);
	if (errors) problems.push(`${op} (IPv${family}): ${errors} call(s) failed, the first with ${String(d.first_errno ?? '?')}`);
	return { op, family, ops, perCall: ops ? tsc.map((t) => t / ops) : [], monotonicNs: num(d.monotonic_ns, 0), errors, firstErrno: String(d.first_errno ?? ''), problems };
}

function insnCommand(topo: Topology, op: InsnOp, family: 4 | 6): string[] {
	const peer = op === 'tcp-rr' ? (family === 4 ? topo.server.v4 : topo.server.v6) : DEAD_END[`v${family}`];
	return [
		'larval-insns', '--family', String(family), '--op', op, '--peer', peer, '--port', String(op === 'tcp-rr' ? ECHO_PORT[family] : DEAD_END_PORT),
		'--size', String(INSN_PAYLOAD), '--ops', String(INSN_OPS_PER_BATCH[op]), '--batches', String(INSN_BATCHES), '--warmup', String(INSN_WARMUP),
	];
}

/**
 * Builds @topo with the near side's SAs installed up front (no acquire, no
 * larval route: the path every packet takes once keyed) and the dead end,
 * starts a TCP echo per family on the far side, then per setting (sysctls applied in the near
 * namespace, in order) measures every op of both families.
 */
export async function measureInsns(vm: Vm, topo: Topology, settings: readonly InsnStep[], ops: readonly InsnOp[] = INSN_OPS): Promise<Map<InsnSetting, InsnRun[]>> {
	const echo = (family: 4 | 6) => {
		const log = `${RUN_DIR}/insns-echo-${family}.tap`;
		return [
			`ip netns exec ${topo.server.ns} ${shellJoin(['larval-insns', '--family', String(family), '--echo', '--port', String(ECHO_PORT[family])])} >${log} 2>&1 & s${family}=$!`,
			waitForReady(log, `larval-insns --echo (IPv${family}) did not start`),
		];
	};
	const measure = settings.flatMap(({ setting, sysctls }) => [
		...sysctlSteps(topo.kmNamespace, sysctls),
		...ops.flatMap((op) =>
			INSN_FAMILIES.map((family) => `echo "=== ${setting}-${key(op, family)}"; ip netns exec ${topo.client.ns} ${shellJoin(insnCommand(topo, op, family))} 2>&1`),
		),
	]);
	const script = [
		'set -u',
		`mkdir -p ${RUN_DIR}`,
		`{ ${topo.setup.join(' && ')}; } >${RUN_DIR}/setup.err 2>&1 || { echo "=== not-ready"; cat ${RUN_DIR}/setup.err; exit 95; }`,
		...topo.nearStates.map((s) => `ip -n ${topo.kmNamespace} ${shellJoin(stateAdd(s))} || { echo "=== not-ready"; echo "near SA"; exit 95; }`),
		`{ ${deadEndSetup(topo).join(' && ')}; } >${RUN_DIR}/dead-end.err 2>&1 || { echo "=== not-ready"; cat ${RUN_DIR}/dead-end.err; exit 95; }`,
		...echo(4),
		...echo(6),
		...measure,
		'kill -TERM $s4 $s6; wait $s4 $s6',
	].join('\n');
	const r = await vm.exec(script, { timeoutMs: 20 * 60_000 });
	const s = splitSections(r.stdout);
	if (s.has('not-ready')) throw new LarvalError(`instruction-count set-up failed in the guest: ${s.get('not-ready')!.trim()}`, r.stderr);
	return new Map(settings.map(({ setting }) => [setting, ops.flatMap((op) => INSN_FAMILIES.map((family) => insnRunOf(s.get(`${setting}-${key(op, family)}`) ?? '', op, family)))]));
}

/**
 * @repeat rounds, each booting every kernel in turn under ICOUNT: stock
 * once per boot, the series' kernel with its switch off and then on.
 */
export async function benchInsns(kernels: readonly KernelTarget[], repeat: number): Promise<InsnSample[]> {
	const out: InsnSample[] = [];
	for (let round = 1; round <= repeat; round++) {
		for (const kernel of round % 2 ? kernels : [...kernels].reverse()) {
			const guest = await bootGuest(kernel, { icount: true });
			try {
				const resolve = await kernelHasResolve(guest.vm);
				// sysctlSteps() resets the switch to 0 before each setting's own sysctls.
				const settings: InsnStep[] = resolve ? [{ setting: 'off', sysctls: {} }, { setting: 'on', sysctls: RESOLVE_1.sysctls }] : [{ setting: 'stock', sysctls: {} }];
				const got = await measureInsns(guest.vm, topology('transport'), settings);
				for (const [setting, runs] of got) {
					out.push({ kernel: kernel.name, round, setting, runs });
					progress(`instructions round ${round}/${repeat} ${kernel.name} [${setting}]: ${runs.map((x) => `${x.op} v${x.family} ${median(x.perCall)?.toFixed(0) ?? 'n/a'}`).join(', ')}`);
				}
			} finally {
				await guest.vm.stop();
			}
		}
	}
	return out;
}

export interface InsnRow {
	kernel: string;
	setting: InsnSetting;
	op: InsnOp;
	family: 4 | 6;
	/** Median over every batch of every round. */
	perCall: number | null;
	/** (max - min) / median over every batch of every round: what a repeat may move. */
	spreadPct: number | null;
	/**
	 * 1.4826 x the median absolute deviation of the batches, over their
	 * median (a standard deviation's estimate that one batch with a timer
	 * interrupt's extra work cannot inflate), in percent.
	 */
	noisePct: number | null;
	/** The baseline kernel's perCall for the same call. */
	basePerCall: number | null;
	/** Against stock, round by round (each round's median batch); null for stock itself. */
	ratio: number | null;
	ratioMin: number | null;
	ratioMax: number | null;
	/**
	 * What the ratio may move by without the kernels' costs having moved, in
	 * percent: half its range over rounds, or the two kernels' batch noise
	 * combined, whichever is larger.  A baseline comparison allows this much.
	 */
	ratioNoisePct: number | null;
	/** The target the ratio is held to, or null. */
	target: number | null;
	problems: string[];
}

/** 1.4826 x MAD / median, in percent; null for no values. */
export function noisePct(xs: readonly number[]): number | null {
	const m = median(xs);
	if (!m) return null;
	return ((1.4826 * median(xs.map((x) => Math.abs(x - m)))!) / m) * 100;
}

/** Per kernel, setting, op and family: the count, its spread, its ratio to @baseline. */
export function summarizeInsns(samples: readonly InsnSample[], baseline: string): InsnRow[] {
	const rows: InsnRow[] = [];
	const groups = [...new Set(samples.map((s) => `${s.kernel}\u0000${s.setting}`))];
	// Each sample's run of one call, with the sample's round, in the samples' order.
	const runsOf = (of: readonly InsnSample[], op: InsnOp, family: number) =>
		of.flatMap((s) => {
			const run = s.runs.find((r) => r.op === op && r.family === family);
			return run ? [{ round: s.round, run }] : [];
		});
	const baselineSamples = samples.filter((s) => s.kernel === baseline);
	for (const g of groups) {
		const [kernel, setting] = g.split('\u0000') as [string, InsnSetting];
		const mine = samples.filter((s) => s.kernel === kernel && s.setting === setting);
		for (const op of INSN_OPS) {
			for (const family of INSN_FAMILIES) {
				const runs = runsOf(mine, op, family);
				const ok = runs.filter((x) => !x.run.problems.length);
				const all = ok.flatMap((x) => x.run.perCall);
				const m = median(all);
				const sp = spread(all);
				const baseRuns = kernel === baseline ? [] : runsOf(baselineSamples, op, family);
				// Round by round, against the baseline's first sample of that round.
				const ratios = ok.flatMap((x) => {
					const br = baseRuns.find((y) => y.round === x.round)?.run;
					const bm = br && !br.problems.length ? median(br.perCall) : null;
					const xm = median(x.run.perCall);
					return bm && xm !== null ? [xm / bm] : [];
				});
				const rr = spread(ratios);
				const noise = noisePct(all);
				const base = baseRuns.flatMap((y) => (y.run.problems.length ? [] : y.run.perCall));
				const baseNoise = noisePct(base);
				const r = median(ratios);
				rows.push({
					kernel,
					setting,
					op,
					family,
					perCall: m,
					spreadPct: m && sp ? ((sp.max - sp.min) / m) * 100 : null,
					noisePct: noise,
					basePerCall: median(kernel === baseline ? all : base),
					ratio: r,
					ratioMin: rr?.min ?? null,
					ratioMax: rr?.max ?? null,
					ratioNoisePct: r === null || rr === null || noise === null || baseNoise === null ? null : Math.max(((rr.max - rr.min) / 2 / r) * 100, Math.hypot(noise, baseNoise)),
					target: kernel === baseline ? null : setting === 'on' ? SWITCH_ON_TARGET : SWITCH_OFF_TARGET,
					problems: runs.flatMap((x) => x.run.problems.map((p) => `round ${x.round}: ${p}`)),
				});
			}
		}
	}
	return rows;
}

/** Whether a ratio meets its target: at most the target, or above it by no more than its noise. */
export function meetsTarget(r: InsnRow): boolean | null {
	if (r.ratio === null || r.target === null) return null;
	return r.ratio <= r.target * (1 + (r.ratioNoisePct ?? 0) / 100);
}

const ratioText = (x: number | null) => (x === null ? '-' : `${x.toFixed(4)}x`);

export function renderInsns(rows: readonly InsnRow[], baseline: string): string {
	return textTable(
		['kernel [switch]', 'call', 'IP', 'insns/call', 'spread', 'noise', `/ ${baseline}`, `- ${baseline}`, 'ratio over rounds', 'ratio noise', 'target', 'meets'],
		rows.map((r) => [
			`${r.kernel} [${r.setting === 'stock' ? 'no switch' : `xfrm_resolve ${r.setting}`}]`,
			r.op,
			`v${r.family}`,
			r.perCall === null ? `n/a${r.problems.length ? ` (${r.problems.length} failed)` : ''}` : r.perCall.toFixed(1),
			r.spreadPct === null ? '-' : `${r.spreadPct.toFixed(3)}%`,
			r.noisePct === null ? '-' : `${r.noisePct.toFixed(3)}%`,
			ratioText(r.ratio),
			r.perCall === null || r.basePerCall === null || r.kernel === baseline ? '-' : `${r.perCall - r.basePerCall >= 0 ? '+' : ''}${(r.perCall - r.basePerCall).toFixed(1)}`,
			r.ratioMin === null ? '-' : `${ratioText(r.ratioMin)}..${ratioText(r.ratioMax)}`,
			r.ratioNoisePct === null ? '-' : `${r.ratioNoisePct.toFixed(3)}%`,
			r.target === null ? '-' : `<= ${r.target.toFixed(3)}x`,
			((m) => (m === null ? '-' : m ? 'yes' : 'NO'))(meetsTarget(r)),
		]),
	);
}
