import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { textTable } from '../report/table.js';
import { findCase, LARVAL_DROP_1, type Case } from '../suite/cases.js';
import { type CellResult, cellPassed, cellText, KernelSession } from '../suite/session.js';
import { LarvalError, tailLines, UsageError } from '../util/errors.js';
import { withLock } from '../util/lock.js';
import { cacheRoot, kernelPatchesDir } from '../util/paths.js';
import { progress } from '../util/progress.js';
import { describeMachine, type GuestMachine } from '../vm/machine.js';
import { type BuildTree, configureTree, makeBzImage, makeTree, openBuildTree, runLogged, unpackSource } from './build.js';
import { fragmentPaths } from './config.js';
import { applySeries, loadSeries, type Patch } from './series.js';
import { defaultLine, type KernelLine } from './line.js';
import { findKernelSource } from './source.js';
import type { KernelTarget } from './target.js';

/**
 * The compatibility rows each prefix boots into, in stock mode
 * (xfrm_resolve left at 0: every prefix must still behave as stock).  Each
 * goes through call sites the series changes, and each ends within a few
 * seconds under TCG: the TCP SYN through xfrm_lookup_route() (0001, 0002),
 * a blocking UDP sender over IPv4 and IPv6 (0008 and 0009 make it wait on a
 * larval route), and the IPv6 echo reply the kernel generates (0004 gives
 * icmpv6_echo_reply() XFRM_LOOKUP_LARVAL).  The full matrix is `larval run`.
 */
export const COMPAT_CASES: readonly string[] = ['tcp-connect-blackhole', 'udp-datagrams-lost', 'udp6-datagrams-lost', 'ping6-reply-dropped'];

/** Per prefix; a ccache-warm incremental build takes a minute or two on 2 shared cores. */
export const BUILD_TIMEOUT_MS = 30 * 60_000;
const CHECKPATCH_TIMEOUT_MS = 2 * 60_000;
/**
 * netdev's checkpatch flags, what its maintainers run on a posted series:
 * plain --strict lets lines over 80 columns and typos through.  The
 * --codespellfile they need comes from codespellDictionary().
 */
const CHECKPATCH_FLAGS: readonly string[] = ['--strict', '--max-line-length=80', '--codespell'];
// xz-decompressing the 140 MB tarball is the slow part of setting up.
const UNPACK_TIMEOUT_MS = 20 * 60_000;
const CONFIGURE_TIMEOUT_MS = 10 * 60_000;
const LOG_TAIL_LINES = 30;
const MAX_DIAGNOSTICS = 10;

export interface CheckpatchTotals {
	errors: number;
	warnings: number;
	checks: number;
	lines: number;
}

/** Reads checkpatch's summary line; `checks` is there only with --strict (0 otherwise). */
export function parseCheckpatchTotals(output: string): CheckpatchTotals | null {
	const m = /^total: (\d+) errors?, (\d+) warnings?, (?:(\d+) checks?, )?(\d+) lines? checked$/m.exec(output);
	if (!m) return null;
	return { errors: Number(m[1]), warnings: Number(m[2]), checks: Number(m[3] ?? 0), lines: Number(m[4]) };
}

export interface CheckpatchVerdict {
	ok: boolean;
	totals: CheckpatchTotals | null;
	/** The ERROR:, WARNING: and CHECK: lines, each with the FILE: line that follows it. */
	findings: string[];
}

/** Any error, warning or check fails the patch; so does output without a summary line (checkpatch did not get through it). */
export function checkpatchVerdict(output: string, exitCode: number): CheckpatchVerdict {
	const totals = parseCheckpatchTotals(output);
	const lines = output.split('\n');
	const findings: string[] = [];
	lines.forEach((l, i) => {
		if (!/^(ERROR|WARNING|CHECK):/.test(l)) return;
		const where = lines[i + 1]?.startsWith('#') ? ` (${lines[i + 1]!.replace(/^#\d+: /, '')})` : '';
		findings.push(`${l}${where}`);
	});
	const clean = totals !== null && totals.errors === 0 && totals.warnings === 0 && totals.checks === 0;
	return { ok: clean && exitCode === 0 && findings.length === 0, totals, findings };
}

export interface PrefixRange {
	/** 1-based patch numbers, both included. */
	from: number;
	to: number;
}

function patchNumber(value: string | undefined, name: string, total: number): number | undefined {
	if (value === undefined) return undefined;
	const n = Number(value);
	if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a patch number, 1..${total}, not "${value}"`);
	if (n > total) throw new UsageError(`--${name} ${n} is beyond the series: kernel-patches/series has ${total} patch${total === 1 ? '' : 'es'}`);
	return n;
}

/** Which prefixes to check: all of them unless --from / --to narrow it. */
export function prefixRange(total: number, from?: string, to?: string): PrefixRange {
	if (total === 0) throw new LarvalError('kernel-patches/series is missing or names no patches: there is nothing to check');
	const f = patchNumber(from, 'from', total) ?? 1;
	const t = patchNumber(to, 'to', total) ?? total;
	if (f > t) throw new UsageError(`--from ${f} is after --to ${t}`);
	return { from: f, to: t };
}

/** A patch that changes Kconfig may change what olddefconfig makes of the fragments, so its prefix is configured again. */
export function touchesKconfig(patch: string): boolean {
	return /^\+\+\+ b\/(?:.*\/)?Kconfig[^/]*$/m.test(patch);
}

export interface CompilerDiagnostics {
	errors: string[];
	warnings: string[];
}

/** The compiler's, linker's and modpost's errors and warnings in a build log; make's own "Error 2" lines only repeat them. */
export function compilerDiagnostics(log: string): CompilerDiagnostics {
	const errors = new Set<string>();
	const warnings = new Set<string>();
	for (const line of log.split('\n')) {
		if (/: (fatal )?error: |undefined reference to |^ERROR: /.test(line)) errors.add(line.trim());
		else if (/: warning: |^WARNING: /.test(line)) warnings.add(line.trim());
	}
	return { errors: [...errors], warnings: [...warnings] };
}

export type StepStatus = 'ok' | 'failed' | 'skipped' | 'not reached';

export interface Step {
	status: StepStatus;
	seconds?: number;
	/** Why it failed: a log tail, patch(1)'s output, the failing rows. */
	detail?: string;
}

export interface BuildStep extends Step {
	diagnostics?: CompilerDiagnostics;
}

export interface CompatStep extends Step {
	/** QEMU start to a guest answering ssh. */
	bootSeconds?: number;
	/** The accelerator, vCPUs and preemption model the prefix booted with. */
	machine?: GuestMachine;
	passed: number;
	total: number;
	/** Whether the prefix has net.core.xfrm_resolve (it was left at 0). */
	hasResolve?: boolean;
	cells: Array<{ caseId: string; ok: boolean; text: string }>;
	consoleLog?: string | null;
}

export interface PrefixRow {
	/** 1-based: the prefix is patches 1..n. */
	n: number;
	patch: string;
	checkpatch: Step & { totals: CheckpatchTotals | null; findings: string[] };
	apply: Step;
	build: BuildStep;
	/**
	 * The same prefix built again with CONFIG_IPV6=n, in a build directory
	 * of its own: the series' IPv4 and xfrm code must not lean on IPv6's
	 * (0009 once included <net/xfrm.h> inside an IPv6 #if in ping.c).
	 * Built, not booted: what could break there is the build.
	 */
	buildNoIpv6: BuildStep;
	boot: CompatStep;
}

export function rowPassed(r: PrefixRow): boolean {
	return [r.checkpatch, r.apply, r.build, r.buildNoIpv6, r.boot].every((s) => s.status === 'ok' || s.status === 'skipped');
}

const secs = (s: number | undefined) => (s === undefined ? '' : `${s < 1 ? s.toFixed(2) : s < 10 ? s.toFixed(1) : Math.round(s)} s`);

function checkpatchCell(c: PrefixRow['checkpatch']): string {
	if (c.status !== 'ok' && c.status !== 'failed') return c.status;
	const t = c.totals;
	const what = t ? `${t.errors} errors, ${t.warnings} warnings, ${t.checks} checks` : 'no summary';
	return `${c.status === 'ok' ? 'ok' : 'FAIL'} (${what}) ${secs(c.seconds)}`;
}

function stepCell(s: Step, okWord: string): string {
	if (s.status === 'ok') return `${okWord} ${secs(s.seconds)}`.trim();
	if (s.status === 'failed') return `FAIL ${secs(s.seconds)}`.trim();
	return s.status;
}

function buildCell(b: BuildStep): string {
	const d = b.diagnostics;
	if (b.status !== 'failed' || !d) return stepCell(b, 'ok');
	const counts = [d.errors.length && `${d.errors.length} error${d.errors.length === 1 ? '' : 's'}`, d.warnings.length && `${d.warnings.length} warning${d.warnings.length === 1 ? '' : 's'}`].filter(Boolean);
	return `${stepCell(b, 'ok')}${counts.length ? ` (${counts.join(', ')})` : ''}`;
}

function compatCell(b: CompatStep): string {
	if (b.status === 'skipped' || b.status === 'not reached') return b.status;
	const boot = b.bootSeconds === undefined ? 'no boot' : `boot ${secs(b.bootSeconds)}`;
	return `${b.status === 'ok' ? 'ok' : 'FAIL'} ${b.passed}/${b.total} (${boot}, total ${secs(b.seconds)})`;
}

/** One row per patch: its checkpatch result, whether it applies on the prefix before it, and the prefix's build and boot. */
export function renderSeriesTable(rows: readonly PrefixRow[]): string {
	return textTable(
		['#', 'patch', 'checkpatch (netdev)', 'applies', 'build', 'build IPv6=n', 'boot + compat'],
		rows.map((r) => [String(r.n), r.patch, checkpatchCell(r.checkpatch), stepCell(r.apply, 'yes'), buildCell(r.build), buildCell(r.buildNoIpv6), compatCell(r.boot)]),
	);
}

/** The machines the prefixes booted on, each once ("tcg, 2 vCPUs, PREEMPT"). */
export function bootedMachines(rows: readonly PrefixRow[]): string[] {
	return [...new Set(rows.flatMap((r) => (r.boot.machine ? [describeMachine(r.boot.machine)] : [])))];
}

/** What went wrong, per failed row and step, for under the table. */
export function renderFailures(rows: readonly PrefixRow[]): string {
	const out: string[] = [];
	for (const r of rows) {
		const steps: Array<[string, Step]> = [['checkpatch', r.checkpatch], ['apply', r.apply], ['build', r.build], ['build IPv6=n', r.buildNoIpv6], ['boot + compat', r.boot]];
		for (const [name, s] of steps) {
			if (s.status !== 'failed') continue;
			out.push(`${r.patch}: ${name} failed`);
			if (s.detail) out.push(...s.detail.split('\n').map((l) => `    ${l}`));
		}
	}
	return out.join('\n');
}

// ---- running it -------------------------------------------------------------

export interface CheckSeriesOptions {
	from?: string;
	to?: string;
	build: boolean;
	boot: boolean;
	/** Whose series, on whose source (default: the default line's). */
	line?: KernelLine;
	/** vCPUs of each prefix's guest (default: LARVAL_CPUS, else 2). */
	cpus?: number;
	onRow?: (row: PrefixRow) => void;
}

export interface CheckSeriesReport {
	sourceVersion: string;
	range: PrefixRange;
	/** Once per run, before the first row. */
	setup: { unpackSeconds: number; configureSeconds?: number };
	scratch: string;
	rows: PrefixRow[];
}

const since = (t0: number) => (performance.now() - t0) / 1000;
const logTail = (path: string) => (existsSync(path) ? tailLines(readFileSync(path, 'utf8'), LOG_TAIL_LINES) : '');

/** A set-up step that fails is nobody's row: the run stops, with the log's tail. */
async function setupStep<T>(what: string, logPath: string, fn: () => Promise<T>): Promise<T> {
	try {
		return await fn();
	} catch (e) {
		if (e instanceof LarvalError) throw e;
		throw new LarvalError(`check-series: ${what} failed: ${(e as Error).message}\nlog: ${logPath}`, logTail(logPath));
	}
}

function compatCases(): Case[] {
	return COMPAT_CASES.map((id) => {
		const c = findCase(id);
		if (!c?.stock['larval_drop=1']) throw new Error(`COMPAT_CASES: ${id} is not a case with a larval_drop=1 expectation`);
		return c;
	});
}

/**
 * codespell's dictionary, for checkpatch --codespell.  checkpatch reads the
 * file itself and, when it is not there, says so in passing and checks no
 * spelling at all: a missing codespell must stop the run, not pass every
 * patch unchecked.  Python is asked where its codespell_lib is rather than
 * trusting one path: Debian's package is in the system python's
 * dist-packages, which a python3 earlier on PATH (pyenv, a venv) does not
 * see, so /usr/bin/python3 is asked first and PATH's python3 (a pip
 * install) after it.
 */
async function codespellDictionary(): Promise<string> {
	const script = 'import codespell_lib, os; print(os.path.join(os.path.dirname(codespell_lib.__file__), "data", "dictionary.txt"))';
	for (const python of ['/usr/bin/python3', 'python3']) {
		const r = await execa(python, ['-c', script], { reject: false, stdin: 'ignore' });
		const path = r.exitCode === 0 ? r.stdout.trim() : '';
		if (path && existsSync(path)) return path;
	}
	throw new LarvalError('no codespell dictionary for checkpatch --codespell (no python3 imports codespell_lib): install the codespell package (`make deps`)');
}

/** checkpatch runs at once: one per core this project's machines have. */
const CHECKPATCH_JOBS = Math.max(1, Math.min(2, availableParallelism()));

async function runCheckpatch(src: string, patch: Patch, dictionary: string): Promise<PrefixRow['checkpatch']> {
	const t0 = performance.now();
	// Inside the tree, so that it finds its spelling and const_structs lists.
	const r = await execa('perl', ['scripts/checkpatch.pl', ...CHECKPATCH_FLAGS, '--codespellfile', dictionary, patch.path], { cwd: src, reject: false, all: true, timeout: CHECKPATCH_TIMEOUT_MS, stdin: 'ignore' });
	const seconds = since(t0);
	if (r.timedOut) return { status: 'failed', seconds, totals: null, findings: [], detail: `checkpatch timed out after ${CHECKPATCH_TIMEOUT_MS / 1000} s` };
	const v = checkpatchVerdict(r.all ?? '', r.exitCode ?? -1);
	const detail = v.ok ? undefined : v.findings.length ? v.findings.join('\n') : tailLines(r.all ?? '', LOG_TAIL_LINES);
	return { status: v.ok ? 'ok' : 'failed', seconds, totals: v.totals, findings: v.findings, detail };
}

async function applyOne(src: string, patch: Patch): Promise<Step> {
	const t0 = performance.now();
	try {
		await applySeries(src, [patch]);
		return { status: 'ok', seconds: since(t0) };
	} catch (e) {
		const err = e as LarvalError;
		return { status: 'failed', seconds: since(t0), detail: [err.message, err.detail].filter(Boolean).join('\n') };
	}
}

/**
 * The base configuration with IPv6 switched off afterwards (and what
 * depends on it with it): the fragments ask for IPv6 options that Kconfig
 * must drop here, so configureTree()'s dropped-option check cannot run on
 * this one.
 */
async function configureNoIpv6(tree: BuildTree, fragments: readonly string[], folded: Readonly<Record<string, string>>): Promise<void> {
	await configureTree(tree, fragments, CONFIGURE_TIMEOUT_MS, folded);
	await runLogged(join(tree.src, 'scripts/config'), ['--file', join(tree.out, '.config'), '--disable', 'IPV6'], tree.dir, tree.log, tree.env, CONFIGURE_TIMEOUT_MS);
	await makeTree(tree, ['olddefconfig'], CONFIGURE_TIMEOUT_MS);
	const config = readFileSync(join(tree.out, '.config'), 'utf8');
	if (/^CONFIG_IPV6=/m.test(config)) throw new LarvalError('check-series: CONFIG_IPV6 stayed set after scripts/config --disable IPV6');
}

async function buildPrefix(tree: BuildTree, patch: Patch, logPath: string, configure: (t: BuildTree) => Promise<void>): Promise<BuildStep & { bzImage?: string; release?: string }> {
	const t0 = performance.now();
	const log = createWriteStream(logPath);
	const prefixTree = { ...tree, log };
	let failure: string | undefined;
	let built: { bzImage: string; release: string } | undefined;
	try {
		if (touchesKconfig(patch.content)) await configure(prefixTree);
		built = await makeBzImage(prefixTree, availableParallelism(), BUILD_TIMEOUT_MS);
	} catch (e) {
		failure = (e as Error).message;
	} finally {
		await new Promise((r) => log.end(r));
	}
	const seconds = since(t0);
	const diagnostics = compilerDiagnostics(readFileSync(logPath, 'utf8'));
	// ccache replays a hit's warnings, so an incremental build shows those of every file it recompiled.
	if (!failure && diagnostics.warnings.length) failure = 'the build has compiler warnings (the tree builds without any before the series)';
	if (!failure) return { status: 'ok', seconds, diagnostics, ...built };
	const listed = [...diagnostics.errors, ...diagnostics.warnings].slice(0, MAX_DIAGNOSTICS);
	return { status: 'failed', seconds, diagnostics, detail: [failure, ...listed, `log: ${logPath}`, ...(diagnostics.errors.length ? [] : [logTail(logPath)])].join('\n') };
}

async function bootPrefix(n: number, bzImage: string, release: string, cases: readonly Case[], cpus: number | undefined): Promise<CompatStep> {
	const kernel: KernelTarget = { name: `prefix-${String(n).padStart(4, '0')}`, kind: 'path', bzImage, release };
	const session = new KernelSession(kernel, 'test', { cpus });
	const step: CompatStep = { status: 'failed', passed: 0, total: cases.length, cells: [] };
	const t0 = performance.now();
	const failures: string[] = [];
	try {
		step.hasResolve = await session.hasResolve();
		step.bootSeconds = since(t0);
		step.machine = session.guestMachine;
		for (const c of cases) {
			const cell: CellResult = await session.runCell(c, LARVAL_DROP_1, c.stock['larval_drop=1']!, 1);
			const ok = cellPassed(cell);
			step.cells.push({ caseId: c.id, ok, text: cellText(cell) });
			if (ok) step.passed++;
			else failures.push(`${c.id} [${LARVAL_DROP_1.id}]: ${[cellText(cell), ...cell.violations.flat(), ...cell.findings.map((f) => `console: ${f.kind} at line ${f.line}: ${f.text}`)].join('; ')}`);
		}
	} catch (e) {
		failures.push(`${(e as Error).message}${(e as LarvalError).detail ? `\n${(e as LarvalError).detail}` : ''}`);
	} finally {
		// Findings after the last row (or during the boot) belong to this prefix too.
		for (const f of session.newFindings()) failures.push(`console: ${f.kind} at line ${f.line}: ${f.text}`);
		step.consoleLog = await session.close(failures.length > 0);
	}
	step.seconds = since(t0);
	if (failures.length === 0 && step.passed === step.total) step.status = 'ok';
	else step.detail = [...failures, ...(step.consoleLog ? [`console log: ${step.consoleLog}`] : [])].join('\n');
	return step;
}

/**
 * Checks every prefix from..to of kernel-patches/series in one working copy
 * of the source and one build directory: checkpatch on each patch (on the
 * pristine tree), then patch N applied on top of 1..N-1, built
 * incrementally, booted and run through COMPAT_CASES.
 */
export async function checkSeries(opts: CheckSeriesOptions): Promise<CheckSeriesReport> {
	const line = opts.line ?? defaultLine();
	const patches = loadSeries(line.seriesDir);
	const range = prefixRange(patches.length, opts.from, opts.to);
	const source = await findKernelSource(line);
	const cases = compatCases();
	const fragments = fragmentPaths(join(kernelPatchesDir, 'config'), 'base');
	// Before the unpacking: a host without codespell learns it at once.
	const dictionary = await codespellDictionary();
	// A line's own tree: checking 7.3 never unpacks over a 6.12 run's objects.
	const scratch = join(cacheRoot(), `check-series${line.cacheInfix ? `-${line.id}` : ''}`);
	mkdirSync(scratch, { recursive: true });
	// Two runs would patch and build the same tree under each other.
	return withLock(join(scratch, 'tree'), 10_000, async () => {
		const logs = join(scratch, 'logs');
		rmSync(logs, { recursive: true, force: true });
		mkdirSync(logs, { recursive: true });
		const setupLogPath = join(logs, 'setup.log');
		const setupLog = createWriteStream(setupLogPath);
		const tree = await openBuildTree(scratch, setupLog);
		// The same sources, a build directory of its own: make keeps each configuration's objects apart.
		const noIpv6Tree: BuildTree = { ...tree, out: join(scratch, 'build-noipv6') };
		// Never reuse a build directory across runs: the tarball restores old
		// mtimes, so objects of a later prefix built last time would look newer
		// than the sources of an earlier one and make would keep them.
		for (const d of [tree.src, tree.out, noIpv6Tree.out]) rmSync(d, { recursive: true, force: true });
		mkdirSync(noIpv6Tree.out, { recursive: true });
		const report: CheckSeriesReport = { sourceVersion: source.packageVersion, range, setup: { unpackSeconds: 0 }, scratch, rows: [] };
		try {
			let t0 = performance.now();
			progress(`check-series: unpacking ${source.tarball} into ${tree.src}`);
			await setupStep('unpacking the source', setupLogPath, () => unpackSource(tree, source, UNPACK_TIMEOUT_MS));
			report.setup.unpackSeconds = since(t0);

			const inRange = patches.slice(range.from - 1, range.to);
			const checkpatch = new Map<string, PrefixRow['checkpatch']>();
			// Each patch is checked on its own in the pristine tree, so they can be checked side by side: with
			// --codespell, checkpatch spends most of its 1-3 s per patch loading the dictionary.
			const queue = [...inRange];
			const worker = async () => {
				for (let p = queue.shift(); p; p = queue.shift()) {
					checkpatch.set(p.name, await runCheckpatch(tree.src, p, dictionary));
					progress(`check-series: checkpatch ${p.name}: ${checkpatchCell(checkpatch.get(p.name)!)}`);
				}
			};
			await Promise.all(Array.from({ length: CHECKPATCH_JOBS }, worker));

			const before = patches.slice(0, range.from - 1);
			if (before.length) {
				progress(`check-series: applying patches 1..${before.length}, the prefix before --from`);
				await applySeries(tree.src, before);
			}
			if (opts.build) {
				progress(`check-series: configuring (tinyconfig + ${fragments.map((f) => f.split('/').pop()).join(' + ')}); log: ${setupLogPath}`);
				t0 = performance.now();
				await setupStep('configuring', setupLogPath, () => configureTree(tree, fragments, CONFIGURE_TIMEOUT_MS, line.folded));
				await setupStep('configuring with CONFIG_IPV6=n', setupLogPath, () => configureNoIpv6(noIpv6Tree, fragments, line.folded));
				report.setup.configureSeconds = since(t0);
			}

			let applied = true;
			for (const [i, p] of inRange.entries()) {
				const n = range.from + i;
				const notReached = { status: 'not reached' as const };
				const row: PrefixRow = { n, patch: p.name, checkpatch: checkpatch.get(p.name)!, apply: notReached, build: notReached, buildNoIpv6: notReached, boot: { ...notReached, passed: 0, total: cases.length, cells: [] } };
				if (applied) {
					row.apply = await applyOne(tree.src, p);
					applied = row.apply.status === 'ok';
				}
				if (applied && !opts.build) {
					row.build = { status: 'skipped' };
					row.buildNoIpv6 = { status: 'skipped' };
					row.boot = { ...row.boot, status: 'skipped' };
				} else if (applied) {
					progress(`check-series: building prefix 1..${n} (${p.name}); log: ${join(logs, `${n}-build.log`)}`);
					const built = await buildPrefix(tree, p, join(logs, `${n}-build.log`), (t) => configureTree(t, fragments, CONFIGURE_TIMEOUT_MS, line.folded));
					row.build = { status: built.status, seconds: built.seconds, detail: built.detail, diagnostics: built.diagnostics };
					progress(`check-series: building prefix 1..${n} with CONFIG_IPV6=n; log: ${join(logs, `${n}-build-noipv6.log`)}`);
					const noIpv6 = await buildPrefix(noIpv6Tree, p, join(logs, `${n}-build-noipv6.log`), (t) => configureNoIpv6(t, fragments, line.folded));
					row.buildNoIpv6 = { status: noIpv6.status, seconds: noIpv6.seconds, detail: noIpv6.detail, diagnostics: noIpv6.diagnostics };
					if (built.status === 'ok' && !opts.boot) row.boot = { ...row.boot, status: 'skipped' };
					else if (built.status === 'ok') row.boot = await bootPrefix(n, built.bzImage!, built.release!, cases, opts.cpus);
				}
				report.rows.push(row);
				opts.onRow?.(row);
			}
		} finally {
			setupLog.end();
		}
		// A failed run leaves its tree for a look; the next run starts from the tarball anyway.
		if (report.rows.every(rowPassed)) for (const d of [tree.src, tree.out, noIpv6Tree.out]) rmSync(d, { recursive: true, force: true });
		return report;
	});
}
