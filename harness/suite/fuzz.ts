import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelTarget } from '../kernel/target.js';
import { parseTap } from '../probe/tap.js';
import { pathComponent, resultsRoot } from '../util/paths.js';
import { progress } from '../util/progress.js';
import { shellJoin } from '../util/shell.js';
import { bootGuest, machineOf } from '../vm/guest.js';
import { cpusFromEnvironment, type GuestMachine } from '../vm/machine.js';
import { kmemleakAvailable, kmemleakClear, kmemleakScan, type Leak } from '../vm/kmemleak.js';
import { ExecTimeoutError } from '../vm/ssh.js';
import { GuestDiedError } from '../vm/vm.js';
import { FUZZ_DIR, fuzzCommand, fuzzNetworkSetup, type FuzzSummary, fuzzProblems, parseFuzzSummary, reproduceCommand } from './fuzz-plan.js';
import { splitSections } from './lab.js';
import { diagnoseHang, type ProgramRun } from './program-run.js';
import { timeScaleOf } from './session.js';

export interface FuzzOptions {
	seed: number;
	/** Fuzzing time, boot and scans not included. */
	minutes: number;
	/** Scan kmemleak at the end: 'auto' (the default) does when the kernel has it. */
	kmemleak?: boolean | 'auto';
	/** vCPUs of the guest (default: LARVAL_CPUS, else 2). */
	cpus?: number;
}

export interface FuzzResult extends GuestMachine, ProgramRun {
	kernel: string;
	release: string;
	config: string;
	seed: number;
	minutes: number;
	bootMs: number;
	/** From starting larval-fuzz to its output in hand (or giving up on it). */
	fuzzMs: number;
	summary: FuzzSummary | null;
	/** Null when not scanned. */
	leaks: Leak[] | null;
	/** Each of the problems names the seed. */
	reproduce: string;
	/** The last operations from larval-fuzz's trace file. */
	traceTail: string;
}

/** Past its budget, larval-fuzz finishes its last operation (bounded by a few seconds) and prints the summary. */
const FINISH_SLACK_MS = 60_000;
const TRACE_TAIL_LINES = 200;

function keepArtifacts(r: FuzzResult): string {
	const stamp = new Date().toISOString().replace(/[:.]/g, '-');
	const dir = join(resultsRoot(), 'fuzz', `${stamp}-${pathComponent(r.kernel)}${r.config !== 'base' ? `-${r.config}` : ''}-seed-${r.seed}`);
	mkdirSync(dir, { recursive: true });
	writeFileSync(join(dir, 'fuzz.tap'), r.tapText);
	writeFileSync(join(dir, 'trace-tail.txt'), r.traceTail);
	writeFileSync(join(dir, 'result.json'), JSON.stringify({ ...r, tapText: undefined, traceTail: undefined }, null, '\t'));
	return dir;
}

/**
 * Boots @kernel, builds the fuzzer's two namespaces and runs larval-fuzz in
 * them for @opts.minutes, bounded from outside as well; then reads the
 * console for splats and, where there is kmemleak, scans it.  The guest is
 * fresh and stopped at the end: nothing of one run reaches the next.
 */
export async function runFuzz(kernel: KernelTarget, opts: FuzzOptions): Promise<FuzzResult> {
	const timeScale = timeScaleOf(kernel);
	const seconds = Math.max(1, Math.round(opts.minutes * 60));
	const cpus = opts.cpus ?? cpusFromEnvironment();
	const reproduce = reproduceCommand(kernel, opts.seed, opts.minutes, cpus);
	const guest = await bootGuest(kernel, { cpus });
	const { vm } = guest;
	const result: FuzzResult = {
		kernel: kernel.name,
		release: kernel.release,
		config: kernel.config ?? 'base',
		...machineOf(guest),
		seed: opts.seed,
		minutes: opts.minutes,
		bootMs: Math.round(vm.bootMs),
		fuzzMs: 0,
		summary: null,
		exitStatus: null,
		findings: [],
		hang: null,
		hangDiagnosis: '',
		died: null,
		leaks: null,
		problems: [],
		reproduce,
		tapText: '',
		stderr: '',
		traceTail: '',
		consoleLog: null,
		artifacts: null,
	};
	let failed = true;
	try {
		await vm.run(fuzzNetworkSetup().join(' &&\n'), { timeoutMs: 60_000 * timeScale });
		const leakScan = opts.kmemleak === false ? false : await kmemleakAvailable(vm);
		if (opts.kmemleak === true && !leakScan) throw new Error(`${kernel.name} has no kmemleak to scan`);
		if (leakScan) {
			// Its own scanning thread would compete with the fuzzer for the vCPUs: scans are explicit, at the end.
			await vm.run('echo scan=off > /sys/kernel/debug/kmemleak');
			await kmemleakClear(vm);
		}
		const cmd = fuzzCommand({ seed: opts.seed, seconds, overrunMs: 5000 * timeScale });
		const script = [
			`${shellJoin(cmd)} >${FUZZ_DIR}/tap 2>${FUZZ_DIR}/err; st=$?`,
			'echo "=== status"; echo $st',
			`echo "=== tap"; cat ${FUZZ_DIR}/tap`,
			`echo "=== stderr"; cat ${FUZZ_DIR}/err`,
			`echo "=== trace"; tail -n ${TRACE_TAIL_LINES} ${FUZZ_DIR}/trace`,
		].join('\n');
		progress(`${kernel.name}${timeScale > 1 ? ` (${result.config})` : ''}: larval-fuzz --seed ${opts.seed} for ${seconds} s`);
		const started = performance.now();
		const budgetMs = seconds * 1000 + FINISH_SLACK_MS * timeScale;
		try {
			const r = await vm.exec(script, { timeoutMs: budgetMs, keepOnTimeout: true });
			const s = splitSections(r.stdout);
			result.exitStatus = Number(s.get('status')?.trim() ?? NaN);
			result.tapText = s.get('tap') ?? '';
			result.stderr = s.get('stderr') ?? '';
			result.traceTail = s.get('trace') ?? '';
		} catch (e) {
			if (e instanceof GuestDiedError) {
				result.died = e.message;
				result.fuzzMs = Math.round(performance.now() - started);
				failed = false;
				return result;
			}
			if (!(e instanceof ExecTimeoutError)) throw e;
			const d = await diagnoseHang(vm, 'larval-fuzz', { what: 'last operations', file: `${FUZZ_DIR}/trace`, lines: 40 }, timeScale);
			result.hang = d.answered
				? `larval-fuzz still running ${Math.round(budgetMs / 1000)} s after it started (budget ${seconds} s)`
				: `the guest stopped answering: larval-fuzz still running ${Math.round(budgetMs / 1000)} s after it started, and a shell could not be had`;
			result.hangDiagnosis = d.text;
			// The sysrq report reaches the serial console a moment later.
			await sleep(3000);
			if (d.answered) {
				const t = await vm.exec(`cat ${FUZZ_DIR}/tap; echo "=== trace"; tail -n ${TRACE_TAIL_LINES} ${FUZZ_DIR}/trace`, { timeoutMs: 30_000 * timeScale, keepOnTimeout: true }).catch(() => undefined);
				if (t) [result.tapText = '', result.traceTail = ''] = t.stdout.split('=== trace\n');
			}
		}
		result.fuzzMs = Math.round(performance.now() - started);
		result.summary = parseFuzzSummary(parseTap(result.tapText));
		if (leakScan && !result.hang && vm.alive) result.leaks = await kmemleakScan(vm);
		failed = false;
	} finally {
		result.findings = vm.findings();
		result.problems = fuzzProblems({ ...result, tap: parseTap(result.tapText) });
		const stop = await vm.stop({ failed: failed || result.problems.length > 0 });
		result.consoleLog = stop.consoleLog;
		if (failed || result.problems.length) result.artifacts = keepArtifacts(result);
	}
	return result;
}

/** One line per kind, for people: "connect 812  (refused 403: EINPROGRESS=300 ...)". */
export function renderFuzzCounts(s: FuzzSummary): string {
	const width = Math.max(...Object.keys(s.kinds).map((k) => k.length));
	const errnos = (e: Record<string, number>) => Object.entries(e).map(([n, c]) => `${n}=${c}`).join(' ');
	return Object.entries(s.kinds)
		.map(([k, c]) => `  ${k.padEnd(width)} ${String(c.ops).padStart(7)}${c.fails ? `  (refused ${c.fails}: ${errnos(c.errnos)})` : ''}`)
		.join('\n');
}
