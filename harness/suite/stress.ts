import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelTarget } from '../kernel/target.js';
import { transportTopology } from '../net/topology.js';
import { parseTap } from '../probe/tap.js';
import { LarvalError } from '../util/errors.js';
import { pathComponent, resultsRoot } from '../util/paths.js';
import { progress } from '../util/progress.js';
import { shellJoin } from '../util/shell.js';
import { bootGuest, machineOf } from '../vm/guest.js';
import type { GuestMachine } from '../vm/machine.js';
import { type ConsoleFinding, kcsanRacers, outsideNetworking } from '../vm/console-scan.js';
import { ExecTimeoutError } from '../vm/ssh.js';
import { GuestDiedError, type Vm } from '../vm/vm.js';
import { background, kernelHasResolve, Lab, RUN_DIR, splitSections, sysctlSteps, waitForReady } from './lab.js';
import { diagnoseHang, type ProgramRun } from './program-run.js';
import { timeScaleOf } from './session.js';
import {
	DEFAULT_STRESS_CPUS, DEFAULT_MAX_FAILURES, DEFAULT_ROUNDS, firstFailedRound, lastProgress, parseStressReport, STRESS_DIR, stressCommand, stressEchoCommands, stressKmCommand,
	stressProblems, stressRerunCommand, type StressReport, type WorkerKind,
} from './stress-plan.js';

/** What `larval stress` (and `make stress`) hand to runStress. */
export interface StressOptions {
	kernel: KernelTarget;
	/** The guest's vCPUs (QEMU -smp); larval-stress puts its workers on every one. Default 4. */
	cpus?: number;
	/** Rounds to run; default 10,000. */
	rounds?: number;
	/** The plans' seed; default 1. */
	seed?: number;
	/** Number of the first round: a round's plan depends on the seed and its number alone, so this reruns a failed round. Default 0. */
	firstRound?: number;
	/** Start no round after this many minutes (boot and set-up not counted); default: only the rounds bound the run. */
	minutes?: number;
	/** net.core.xfrm_resolve in the near namespace; default 1 where the kernel has the switch (stock: left alone). */
	resolve?: 0 | 1;
	/** Workers of each kind per CPU; default larval-stress's own (held 1, block 2, poll 1, epoll 1, tcp 1). */
	perCpu?: Partial<Record<WorkerKind, number>>;
	/** Stop after this many failed rounds; default 20. */
	maxFailures?: number;
	/**
	 * The rig's own check: the SAs stay installed from a family's first
	 * round on, so later rounds make no acquire and whatever fails there
	 * is the rig's (the wire, the echo, the program), not the series'.
	 */
	keyed?: boolean;
}

/**
 * GuestMachine's cpus are the vCPUs online in the guest, each of which runs
 * workers; ProgramRun's problems each name their round and the seed, and
 * the command that reruns the run comes last.
 */
export interface StressResult extends GuestMachine, ProgramRun {
	kernel: string;
	release: string;
	config: string;
	seed: number;
	firstRound: number;
	rounds: number;
	minutes: number | null;
	/** The xfrm_resolve the run set, or null when the kernel has no switch. */
	resolve: 0 | 1 | null;
	/** kernel.hung_task_timeout_secs as armed, or null when the kernel has no hung-task detector. */
	hungTaskTimeoutS: number | null;
	/** How each end's receive steering was left to make the veth pair FIFO ("A rps_cpus 1"). */
	wire: string;
	bootMs: number;
	/** From starting larval-stress to its output in hand (or giving up on it). */
	stressMs: number;
	report: StressReport | null;
	/** The round that failed first, or null. */
	failedRound: number | null;
	/** The command that reruns the run from its first failed round (from its first round when none failed). */
	rerun: string;
	/** The key manager's last lines: the ACQUIREs and installs of the last rounds. */
	kmTail: string;
	/** KCSAN reports of races between two functions outside the networking stack (outsideNetworking()): kept, said, not failed. */
	outsideFindings: ConsoleFinding[];
}

/** How long larval-stress may stay silent: its own alarm ends a round after roundBoundS, and it prints a line each round. */
const SILENCE_SLACK_MS = 60_000;
const POLL_EVERY_MS = 10_000;
const WATCH_EXEC_MS = 30_000;
const KM_TAIL_LINES = 400;
/**
 * Base-kernel bounds; the debug flavour stretches them (timeScaleOf), and
 * so does the race flavour here: under KCSAN a round takes 7 times as long
 * (0.85 s against 0.12 s on 2 vCPUs) and echoes came back past 1 s.
 */
const FLAVOUR_SCALE: Readonly<Record<string, number>> = { race: 5 };
const ASLEEP_MS = 1000;
const REPLY_WAIT_MS = 1000;
const ROUND_BOUND_S = 60;
const HUNG_TASK_TIMEOUT_S = 5;

const OUT = {
	tap: `${STRESS_DIR}/stress.tap`,
	err: `${STRESS_DIR}/stress.err`,
	status: `${STRESS_DIR}/stress.status`,
	km: `${STRESS_DIR}/km.log`,
} as const;

/** Shell lines that arm the hung-task detector where the kernel has one, and say so. */
function armHungTask(timeoutS: number): string {
	return `if [ -e /proc/sys/kernel/hung_task_timeout_secs ] && sysctl -qw kernel.hung_task_timeout_secs=${timeoutS} kernel.hung_task_warnings=-1; then echo "=== hung-task"; echo ${timeoutS}; fi`;
}

/**
 * The near side back to its policies and no SA, the far side's stress
 * echoes and the key manager with its control socket started, then
 * larval-stress in the background (the ssh channel may close under it):
 * it writes its status when it ends.
 */
function startScript(lab: Lab, cmd: readonly string[], sysctls: Record<string, number>, hungTaskS: number): string {
	const near = lab.topo.client.ns;
	const far = lab.topo.server.ns;
	const echoes = stressEchoCommands();
	return [
		'set -u',
		`rm -rf ${STRESS_DIR}; mkdir -p ${STRESS_DIR}`,
		armHungTask(hungTaskS),
		...lab.nearResetSteps(),
		...sysctlSteps(near, sysctls),
		...fifoWire([near, far]),
		...echoes.map((e) => background(far, e.args, `${STRESS_DIR}/${e.name}.log.err`)),
		...echoes.map((e) => waitForReady(`${STRESS_DIR}/${e.name}.log`, `${e.name} did not start`)),
		background(near, stressKmCommand(`${RUN_DIR}/keys-${lab.topo.name}`, OUT.km), `${OUT.km}.err`),
		waitForReady(OUT.km, 'larval-km did not start'),
		// The guest's sh runs busybox's own ip for `ip`: netns exec comes first.
		// The far side's counters are read through a process living there (an echo; busybox's pidof has no -s).
		`ip netns exec ${near} setsid sh -c ${shellJoin([`p=$(pidof larval-echo); ${shellJoin(cmd)} --peer-stat /proc/\${p%% *}/net/xfrm_stat >${OUT.tap} 2>${OUT.err}; echo $? >${OUT.status}`])} </dev/null >/dev/null 2>&1 &`,
		'echo "=== started"',
	].join('\n');
}

/** The one veth of namespace @ns (the transport topology's link), as a shell expression. */
function vethOf(ns: string): string {
	return `$(ip -n ${ns} -o link show type veth | sed -n 's/^[0-9]*: *\\([^@:]*\\).*/\\1/p' | head -n 1)`;
}

/**
 * A veth pair hands what several CPUs send to the backlog of the CPU that
 * sent it, and the backlogs run in whatever order their CPUs get to them:
 * a packet sent first can arrive second when its CPU's backlog waits for
 * ksoftirqd.  Receive packet steering to one CPU puts every packet the end
 * in each of @namespaces receives on that one backlog, in the order the other end
 * transmitted it (enqueue_to_backlog() under that backlog's lock).  At the
 * far end that makes arrival order the near kernel's sending order, which
 * is what the stress judges; at the near end it keeps the echoes in order
 * for the key manager's inbound SA, whose replay window (32) dropped
 * replies overtaken by more than that.  (GRO at the far end, veth's NAPI
 * ring, reordered direct traffic of its own: 139 of 300 rounds with no
 * acquire at all, against none for this.)
 */
function fifoWire(namespaces: readonly string[]): string[] {
	return [
		...namespaces.map((ns) => {
			const rps = `/sys/class/net/${vethOf(ns)}/queues/rx-0/rps_cpus`;
			return `ip netns exec ${ns} sh -c ${shellJoin([`echo 1 > ${rps} && echo "${ns} rps_cpus $(cat ${rps})"`])} >>${STRESS_DIR}/wire.out 2>&1 || { echo "=== not-ready"; echo "receive steering in ${ns}"; cat ${STRESS_DIR}/wire.out; exit 96; }`;
		}),
		`echo "=== wire"; cat ${STRESS_DIR}/wire.out`,
	];
}

interface Watched {
	exitStatus: number | null;
	hang: string | null;
}

/**
 * Waits for larval-stress's status, reporting its progress; a program
 * silent past its round bound, or running past the minutes bound, is hung.
 */
async function watch(vm: Vm, silenceMs: number, deadlineMs: number | null, timeScale: number): Promise<Watched> {
	const started = performance.now();
	let size = -1;
	let quietSince = performance.now();
	let lastShown = '';
	for (let i = 0; ; i++) {
		// Soon at first (a short run ends in seconds), then every 10 s.
		await sleep(Math.min(POLL_EVERY_MS, 1000 * 2 ** i));
		let r;
		try {
			r = await vm.exec(`echo "=== status"; cat ${OUT.status} 2>/dev/null; echo "=== size"; wc -c < ${OUT.tap}; echo "=== progress"; grep '^# progress' ${OUT.tap} | tail -n 1`, { timeoutMs: WATCH_EXEC_MS * timeScale, keepOnTimeout: true });
		} catch (e) {
			if (!(e instanceof ExecTimeoutError)) throw e;
			return { exitStatus: null, hang: `the guest did not run a shell command in ${WATCH_EXEC_MS * timeScale / 1000} s` };
		}
		const s = splitSections(r.stdout);
		const statusText = s.get('status')?.trim() ?? '';
		const now = performance.now();
		const sz = Number(s.get('size')?.trim() ?? NaN);
		if (sz !== size) {
			size = sz;
			quietSince = now;
		}
		const line = s.get('progress')?.trim() ?? '';
		if (line && line !== lastShown) {
			progress(`stress: ${line.replace(/^# progress /, '')}`);
			lastShown = line;
		}
		if (statusText) return { exitStatus: Number(statusText), hang: null };
		if (now - quietSince > silenceMs) return { exitStatus: null, hang: `larval-stress printed nothing for ${Math.round((now - quietSince) / 1000)} s (its rounds are bounded by ${Math.round(silenceMs / 1000 - SILENCE_SLACK_MS / 1000)} s)` };
		if (deadlineMs !== null && now - started > deadlineMs) return { exitStatus: null, hang: `larval-stress still running ${Math.round((now - started) / 1000)} s after it started (bound ${Math.round(deadlineMs / 1000)} s)` };
	}
}

function keepArtifacts(r: StressResult, diagnosis: string): string {
	const stamp = new Date().toISOString().replace(/[:.]/g, '-');
	const dir = join(resultsRoot(), 'stress', `${stamp}-${pathComponent(r.kernel)}${r.config !== 'base' ? `-${r.config}` : ''}-cpus-${r.cpus}-seed-${r.seed}`);
	mkdirSync(dir, { recursive: true });
	writeFileSync(join(dir, 'stress.tap'), r.tapText);
	writeFileSync(join(dir, 'stress.err'), r.stderr);
	writeFileSync(join(dir, 'km-tail.log'), r.kmTail);
	if (diagnosis) writeFileSync(join(dir, 'hang.txt'), diagnosis);
	if (r.consoleLog) copyFileSync(r.consoleLog, join(dir, basename(r.consoleLog)));
	writeFileSync(join(dir, 'result.json'), JSON.stringify({ ...r, tapText: undefined, kmTail: undefined, stderr: undefined }, null, '\t'));
	return dir;
}

/**
 * Boots @opts.kernel with @opts.cpus vCPUs, builds the transport topology
 * (its veth pair made FIFO) and runs larval-stress in its near namespace
 * against the test key manager (rounds through its control socket) and
 * the far side's order echoes, with the hung-task detector armed.  Then
 * reads the console for
 * splats.  A failed run keeps its TAP, the key manager's log and the
 * console under results/stress/ and names its first failed round and the
 * command that reruns it from there.
 */
export async function runStress(opts: StressOptions): Promise<StressResult> {
	const kernel = opts.kernel;
	const cpus = opts.cpus ?? DEFAULT_STRESS_CPUS;
	const seed = opts.seed ?? 1;
	const firstRound = opts.firstRound ?? 0;
	const rounds = opts.rounds ?? DEFAULT_ROUNDS;
	const timeScale = Math.max(timeScaleOf(kernel), FLAVOUR_SCALE[kernel.config ?? 'base'] ?? 1);
	const guest = await bootGuest(kernel, { cpus });
	const { vm } = guest;
	const result: StressResult = {
		kernel: kernel.name,
		release: kernel.release,
		config: kernel.config ?? 'base',
		...machineOf(guest),
		seed,
		firstRound,
		rounds,
		minutes: opts.minutes ?? null,
		resolve: null,
		hungTaskTimeoutS: null,
		wire: '',
		bootMs: Math.round(vm.bootMs),
		stressMs: 0,
		report: null,
		exitStatus: null,
		findings: [],
		hang: null,
		hangDiagnosis: '',
		died: null,
		problems: [],
		failedRound: null,
		rerun: '',
		tapText: '',
		stderr: '',
		kmTail: '',
		outsideFindings: [],
		consoleLog: null,
		artifacts: null,
	};
	const rerun = (from: number) => stressRerunCommand({ kernel, cpus, seed, firstRound: from, rounds: rounds - Math.max(0, from - firstRound), minutes: opts.minutes, resolve: opts.resolve, keyed: opts.keyed });
	result.rerun = rerun(firstRound);
	let failed = true;
	try {
		// Fewer vCPUs than asked for would pass a stress that was never run.
		if (result.cpus !== cpus) throw new LarvalError(`the guest has ${result.cpus ?? 'an unknown number of'} vCPUs online, not the ${cpus} asked for`);
		const lab = await Lab.setUp(vm, transportTopology(), 'test', timeScale);
		const hasResolve = await kernelHasResolve(vm);
		if (opts.resolve !== undefined && !hasResolve) throw new LarvalError(`${kernel.name} has no net.core.xfrm_resolve to set to ${opts.resolve}`);
		result.resolve = hasResolve ? (opts.resolve ?? 1) : null;
		const roundBoundS = ROUND_BOUND_S * timeScale;
		const cmd = stressCommand({
			seed, firstRound, rounds,
			seconds: opts.minutes !== undefined ? Math.max(1, Math.round(opts.minutes * 60)) : 0,
			peer4: lab.peer(4), peer6: lab.peer(6),
			perCpu: opts.perCpu,
			maxFailures: opts.maxFailures ?? DEFAULT_MAX_FAILURES,
			asleepMs: ASLEEP_MS * timeScale,
			replyWaitMs: REPLY_WAIT_MS * timeScale,
			roundBoundS,
			progressEvery: 1,
			keyed: opts.keyed,
		});
		const sysctls: Record<string, number> = result.resolve !== null ? { 'net.core.xfrm_resolve': result.resolve } : {};
		const start = await vm.exec(startScript(lab, cmd, sysctls, HUNG_TASK_TIMEOUT_S * timeScale), { timeoutMs: 120_000 * timeScale });
		const s = splitSections(start.stdout);
		if (s.has('not-ready') || !s.has('started')) throw new LarvalError(`setting up the stress failed: ${s.get('not-ready')?.trim() ?? `status ${start.code}`}`, `${start.stdout}${start.stderr}`);
		result.hungTaskTimeoutS = s.has('hung-task') ? Number(s.get('hung-task')!.trim()) : null;
		result.wire = s.get('wire')?.trim() ?? '';
		progress(`${kernel.name}${timeScale > 1 ? ` (${result.config})` : ''}, ${cpus} vCPUs: ${shellJoin(cmd)}`);
		const started = performance.now();
		try {
			const w = await watch(vm, roundBoundS * 1000 + SILENCE_SLACK_MS, opts.minutes !== undefined ? opts.minutes * 60_000 + roundBoundS * 2000 + SILENCE_SLACK_MS : null, timeScale);
			result.exitStatus = w.exitStatus;
			result.hang = w.hang;
			if (w.hang) {
				const d = await diagnoseHang(vm, 'larval-stress', { what: 'output', file: OUT.tap, lines: 60 }, timeScale);
				result.hangDiagnosis = d.text;
				if (!d.answered) result.hang += '; the guest no longer answers';
				// The sysrq report reaches the serial console a moment later.
				await sleep(3000);
			}
			const out = await vm.exec(`echo "=== tap"; cat ${OUT.tap}; echo "=== stderr"; cat ${OUT.err}; echo "=== km"; tail -n ${KM_TAIL_LINES} ${OUT.km}`, { timeoutMs: 60_000 * timeScale, keepOnTimeout: true });
			const o = splitSections(out.stdout);
			result.tapText = o.get('tap') ?? '';
			result.stderr = o.get('stderr') ?? '';
			result.kmTail = o.get('km') ?? '';
		} catch (e) {
			if (!(e instanceof GuestDiedError)) throw e;
			result.died = e.message;
		}
		result.stressMs = Math.round(performance.now() - started);
		failed = false;
	} finally {
		const tap = parseTap(result.tapText);
		result.report = parseStressReport(tap);
		result.failedRound = firstFailedRound(tap);
		const findings = vm.findings();
		result.findings = findings.filter((f) => !outsideNetworking(f));
		result.outsideFindings = findings.filter(outsideNetworking);
		result.problems = stressProblems({ seed, rerun, firstRound, tap, exitStatus: result.exitStatus, stderr: result.stderr, findings: result.findings, hang: result.hang, died: result.died });
		if (result.failedRound !== null) result.rerun = rerun(result.failedRound);
		const bad = failed || result.problems.length > 0;
		const stop = await vm.stop({ failed: bad });
		result.consoleLog = stop.consoleLog;
		if (bad) result.artifacts = keepArtifacts(result, result.hangDiagnosis);
	}
	return result;
}

/** One line for people: rounds, time per round, the counters that matter, the checks. */
export function describeStress(r: StressResult): string {
	const rep = r.report;
	const lp = lastProgress(parseTap(r.tapText));
	if (!rep) return `${r.kernel} ${r.cpus} vCPUs seed ${r.seed}: no summary${lp ? ` (got to round ${lp.round})` : ''}${r.hang ? `; ${r.hang}` : ''}${r.died ? `; ${r.died}` : ''}`;
	const t = rep.totals;
	const failedChecks = Object.entries(rep.checks).filter(([, c]) => !c.ok).map(([k, c]) => `${k} ${c.failedRounds}`);
	return `${r.kernel} ${r.cpus} vCPUs seed ${r.seed}: ${rep.rounds}/${rep.roundsPlanned} rounds (${rep.stopped}), ${rep.msPerRound.toFixed(0)} ms a round, ` +
		`held ${t.XfrmOutLarvalHeld ?? 0} released ${t.XfrmOutLarvalReleased ?? 0} failed ${t.XfrmOutLarvalFailed ?? 0} waits ${t.XfrmOutLarvalWait ?? 0} ` +
		`(failed ${t.XfrmOutLarvalWaitFailed ?? 0}) nostates ${t.XfrmOutNoStates ?? 0}; ` +
		(failedChecks.length ? `failed rounds: ${rep.failedRounds} (${failedChecks.join(', ')}), first ${rep.firstFailedRound}` : 'every check passed') +
		(r.outsideFindings.length ? `; ${r.outsideFindings.length} KCSAN report(s) outside networking, not failed: ${r.outsideFindings.map((f) => kcsanRacers(f).join(' / ')).join(', ')}` : '');
}
