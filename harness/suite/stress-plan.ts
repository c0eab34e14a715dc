import { shellJoin } from '../util/shell.js';
import type { TapPoint, TapStream } from '../probe/tap.js';
import type { ProgramEnd } from './program-run.js';

/**
 * The pure half of `larval stress`: the guest programs' command lines,
 * what larval-stress's TAP says (typed), what fails a run, and the command
 * that reruns it.  The other half (booting, running, watching) is stress.ts.
 */

/** Where the stress keeps its files in the guest. */
export const STRESS_DIR = '/run/larval/stress';
/** larval-km's control socket, in the near namespace's file system (the guest's one). */
export const STRESS_CONTROL = `${STRESS_DIR}/km.sock`;
/** The stress's own echo servers on the far side (UDP with --order, and TCP), apart from the lab's on 7000. */
export const STRESS_PORT = 7001;
/** `make stress` runs this many rounds. */
export const DEFAULT_ROUNDS = 10_000;
export const DEFAULT_STRESS_CPUS = 4;
/** Failed rounds after which larval-stress stops: a broken kernel fails every round, each taking seconds. */
export const DEFAULT_MAX_FAILURES = 20;

/** The worker kinds of larval-stress, each run on every CPU. */
export const WORKER_KINDS = ['held', 'block', 'poll', 'epoll', 'tcp'] as const;
export type WorkerKind = (typeof WORKER_KINDS)[number];

/** The assertions, in the order larval-stress prints them; the tag is what a failed round's `failed:` lists. */
export const STRESS_CHECKS = {
	held: 'no held packet failed',
	wait: 'no wait failed',
	larval: 'no larval state outlived its SA',
	acquire: 'one ACQUIRE per larval state',
	/** Racing lookups that make two larval states for one SA send two ACQUIREs: two negotiations. */
	states: 'one larval state per SA',
	asleep: 'no sender asleep after the install',
	order: 'per-flow order kept',
	keyed: "every round's SA installed",
} as const;
export type StressCheck = keyof typeof STRESS_CHECKS;

/** What larval-stress is asked to do; the harness's bounds scale with the kernel's flavour. */
export interface StressArgs {
	seed: number;
	firstRound: number;
	rounds: number;
	/** 0: no bound but the rounds. */
	seconds: number;
	peer4: string;
	peer6: string;
	perCpu?: Partial<Record<WorkerKind, number>>;
	maxFailures: number;
	/** A call still asleep this long after the install fails the round (1 s on the base kernel). */
	asleepMs: number;
	replyWaitMs: number;
	roundBoundS: number;
	progressEvery: number;
	/** The rig's own check: an SA once installed stays, so only a family's first round acquires. */
	keyed?: boolean;
}

export function stressCommand(a: StressArgs): string[] {
	const args = [
		'larval-stress', '--control', STRESS_CONTROL,
		'--peer4', a.peer4, '--peer6', a.peer6, '--port', String(STRESS_PORT), '--tcp-port', String(STRESS_PORT),
		'--seed', String(a.seed), '--first-round', String(a.firstRound), '--rounds', String(a.rounds),
		'--seconds', String(a.seconds), '--max-failures', String(a.maxFailures),
		'--asleep-ms', String(a.asleepMs), '--reply-wait-ms', String(a.replyWaitMs),
		'--round-bound-s', String(a.roundBoundS), '--progress', String(a.progressEvery),
	];
	for (const k of WORKER_KINDS) if (a.perCpu?.[k] !== undefined) args.push(`--${k}`, String(a.perCpu[k]));
	if (a.keyed) args.push('--keyed');
	return args;
}

/** The far side's echoes for the stress: UDP telling the order of arrival, TCP, both families, no line per packet. */
export function stressEchoCommands(): Array<{ name: string; args: string[] }> {
	const out = [];
	for (const family of ['4', '6']) {
		for (const proto of ['udp', 'tcp']) {
			const name = `echo-stress-${proto}${family}`;
			const args = ['larval-echo', '--family', family, '--proto', proto, '--port', String(STRESS_PORT), '--quiet', '--log', `${STRESS_DIR}/${name}.log`, '--max-runtime-s', '86400'];
			if (proto === 'udp') args.push('--order');
			out.push({ name, args });
		}
	}
	return out;
}

/**
 * The key manager for the stress.  Its inbound SAs take no anti-replay
 * window, as the far side's static ones: the far side sends from several
 * CPUs, and an echo whose ESP sequence number was taken on one CPU while
 * 32 went out from the others was dropped as a replay (a SYN-ACK so
 * dropped left a TCP connect() asleep 1 s after the install).
 */
export function stressKmCommand(keys: string, log: string): string[] {
	return ['larval-km', '--keys', keys, '--control', STRESS_CONTROL, '--replay-window', '0', '--log', log, '--max-runtime-s', '86400'];
}

/** The options `larval stress` takes, as the lead's CLI spells them. */
export interface RerunSpec {
	kernel: { name: string; config?: string };
	cpus: number;
	seed: number;
	firstRound: number;
	rounds: number;
	minutes?: number;
	resolve?: 0 | 1;
	keyed?: boolean;
}

/**
 * The command that reruns a run from @firstRound: the same plans (they
 * depend on the seed and the round's number only), on the same kernel and
 * vCPUs.
 */
export function stressRerunCommand(s: RerunSpec): string {
	const config = s.kernel.config && s.kernel.config !== 'base' ? ['--config', s.kernel.config] : [];
	return shellJoin([
		'larval', 'stress', '--kernel', s.kernel.name, ...config, '--cpus', String(s.cpus), '--seed', String(s.seed),
		'--first-round', String(s.firstRound), '--rounds', String(s.rounds),
		...(s.minutes !== undefined ? ['--minutes', String(s.minutes)] : []),
		...(s.resolve !== undefined ? ['--resolve', String(s.resolve)] : []),
		...(s.keyed ? ['--keyed'] : []),
	]);
}

/** One round larval-stress failed, as its `round N` point says. */
export interface StressRound {
	round: number;
	failed: StressCheck[];
	/** Every contradiction of the round, in larval-stress's words, "; " between them. */
	problems: string;
	delayMs: number;
	method: string;
	/** Bit 0 IPv4, bit 1 IPv6. */
	families: number;
	/** How /proc/net/xfrm_stat of the near namespace moved in the round (XfrmOutLarvalFailed, ...). */
	counters: Record<string, number>;
	acquires: number;
	larvalLeft: number;
	asleep: number;
	/** The first sleeper's kernel stack, when one was caught asleep. */
	asleepStack: string;
	diag: Record<string, unknown>;
}

export interface CheckResult {
	ok: boolean;
	failedRounds: number;
	firstRound: number | null;
	/** The first failed rounds (16 at most). */
	rounds: number[];
}

export interface StressReport {
	seed: string;
	firstRound: number;
	roundsPlanned: number;
	rounds: number;
	failedRounds: number;
	firstFailedRound: number | null;
	/** Why the rounds ended: 'rounds' (all run), 'time' (the minutes bound), 'failures' (the failure bound). */
	stopped: string;
	cpus: number;
	workers: number;
	elapsedMs: number;
	msPerRound: number;
	/** Whether the kernel had /proc/net/xfrm_stat (CONFIG_XFRM_STATISTICS). */
	xfrmStat: boolean;
	/** The counters' movement over the whole run (XfrmOutLarvalHeld, ...). */
	totals: Record<string, number>;
	checks: Record<StressCheck, CheckResult>;
	failed: StressRound[];
}

/** The last `# progress` line: how far a run got, also one that never finished. */
export interface StressProgress {
	round: number;
	done: number;
	failed: number;
	elapsedMs: number;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? NaN));
const CHECK_TAGS = Object.keys(STRESS_CHECKS) as StressCheck[];

function roundOf(p: TapPoint): StressRound {
	const d = p.diag;
	const counters: Record<string, number> = {};
	for (const [k, v] of Object.entries(d)) if (k.startsWith('d_')) counters[k.slice(2)] = num(v);
	return {
		round: num(d.round),
		failed: String(d.failed ?? '').split(',').filter((t): t is StressCheck => (CHECK_TAGS as string[]).includes(t)),
		problems: String(d.problems ?? ''),
		delayMs: num(d.delay_ms),
		method: String(d.method ?? ''),
		families: num(d.families),
		counters,
		acquires: num(d.acquires),
		larvalLeft: num(d.larval_left),
		asleep: num(d.asleep),
		asleepStack: String(d.asleep_stack ?? ''),
		diag: d,
	};
}

function checkOf(p: TapPoint | undefined): CheckResult {
	const d = p?.diag ?? {};
	const first = num(d.first_round);
	return {
		ok: p?.ok ?? false,
		failedRounds: num(d.failed_rounds),
		firstRound: first >= 0 ? first : null,
		rounds: Array.isArray(d.rounds) ? (d.rounds as unknown[]).map(num) : [],
	};
}

/** Reads larval-stress's TAP; null when it never reached its summary (it died or bailed out). */
export function parseStressReport(tap: TapStream): StressReport | null {
	const summary = tap.points.find((p) => p.name === 'summary');
	if (!summary) return null;
	const d = summary.diag;
	const totals: Record<string, number> = {};
	for (const [k, v] of Object.entries(d)) if (k.startsWith('total_')) totals[k.slice(6)] = num(v);
	const first = num(d.first_failed_round);
	return {
		// The seed may pass 2^53 when typed by hand: keep its digits.
		seed: String(d.seed ?? ''),
		firstRound: num(d.first_round),
		roundsPlanned: num(d.rounds_planned),
		rounds: num(d.rounds),
		failedRounds: num(d.failed_rounds),
		firstFailedRound: first >= 0 ? first : null,
		stopped: String(d.stopped ?? ''),
		cpus: num(d.cpus),
		workers: num(d.workers),
		elapsedMs: num(d.elapsed_ms),
		msPerRound: num(d.ms_per_round),
		xfrmStat: d.xfrm_stat === true,
		totals,
		checks: Object.fromEntries(CHECK_TAGS.map((c) => [c, checkOf(tap.points.find((p) => p.name === STRESS_CHECKS[c]))])) as Record<StressCheck, CheckResult>,
		failed: tap.points.filter((p) => /^round \d+$/.test(p.name)).map(roundOf),
	};
}

/** The failed rounds a stream printed, also when it stopped before its summary. */
export function failedRoundsOf(tap: TapStream): StressRound[] {
	return tap.points.filter((p) => /^round \d+$/.test(p.name)).map(roundOf);
}

export function lastProgress(tap: TapStream): StressProgress | null {
	for (let i = tap.comments.length - 1; i >= 0; i--) {
		const m = /^progress round=(\d+) done=(\d+) failed=(\d+) elapsed_ms=(\d+)/.exec(tap.comments[i]!);
		if (m) return { round: Number(m[1]), done: Number(m[2]), failed: Number(m[3]), elapsedMs: Number(m[4]) };
	}
	return null;
}

export type StressVerdictInput = ProgramEnd & {
	seed: number;
	/** The command that reruns the run from its first failed round (or from its start). */
	rerun: (fromRound: number) => string;
	firstRound: number;
};

/**
 * What fails a run: every failed check with its first round and what that
 * round saw, a console finding (splat, hung task), a bail-out, a hang or a
 * death.  The last line is the command that reruns it from the round that
 * failed first.
 */
export function stressProblems(r: StressVerdictInput): string[] {
	const out: string[] = [];
	const rounds = failedRoundsOf(r.tap);
	const report = parseStressReport(r.tap);
	const progress = lastProgress(r.tap);
	const where = progress ? ` (last progress: round ${progress.round}, ${progress.done} rounds done)` : '';
	if (r.hang) out.push(`seed ${r.seed}: hang: ${r.hang}${where}`);
	if (r.died) out.push(`seed ${r.seed}: ${r.died}${where}`);
	for (const f of r.findings) out.push(`seed ${r.seed}: kernel ${f.kind} at console line ${f.line}: ${f.text}`);
	if (!r.hang && !r.died) {
		if (r.tap.bailout !== null) out.push(`seed ${r.seed}: larval-stress bailed out: ${r.tap.bailout}${where}`);
		else if (!report) out.push(`seed ${r.seed}: larval-stress stopped before its summary (exit status ${r.exitStatus ?? 'none'})${where}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
		else if (report.rounds === 0) out.push(`seed ${r.seed}: larval-stress ran no round`);
		// It exits 1 when a round failed: with every check passed, any other status is its own failure.
		else if (r.exitStatus !== 0 && CHECK_TAGS.every((c) => report.checks[c].ok)) out.push(`seed ${r.seed}: larval-stress exited ${r.exitStatus ?? 'without a status'} after passing every check${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
	}
	if (report) {
		for (const c of CHECK_TAGS) {
			const k = report.checks[c];
			if (k.ok) continue;
			const first = rounds.find((x) => x.round === k.firstRound);
			out.push(`round ${k.firstRound ?? '?'} (seed ${r.seed}): ${STRESS_CHECKS[c]}: failed in ${k.failedRounds} of ${report.rounds} rounds${first ? `; round ${first.round} (delay ${first.delayMs} ms, ${first.method}): ${first.problems}` : ''}`);
		}
	} else {
		for (const x of rounds) out.push(`round ${x.round} (seed ${r.seed}): ${x.failed.map((c) => STRESS_CHECKS[c]).join(', ')}: ${x.problems}`);
	}
	if (out.length) {
		const from = report?.firstFailedRound ?? rounds[0]?.round ?? progress?.round ?? r.firstRound;
		out.push(`rerun: ${r.rerun(from)}`);
	}
	return out;
}

/** The round the run failed at first, when one did. */
export function firstFailedRound(tap: TapStream): number | null {
	return parseStressReport(tap)?.firstFailedRound ?? failedRoundsOf(tap)[0]?.round ?? null;
}
