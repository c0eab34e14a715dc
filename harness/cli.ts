#!/usr/bin/env node
import { type Firewall, FIREWALLS } from './net/firewall.js';
import { type ArgsSpec, type ParsedArgs, parseArgs, positiveNumber, single, wholeNumber } from './cli-args.js';
import { commandExitCode, commandStatusText, errorReport, EXIT } from './cli-exit.js';
import { buildKernel } from './kernel/build.js';
import { bootedMachines, checkSeries, renderFailures, renderSeriesTable, rowPassed } from './kernel/check-series.js';
import { fetchDistroKernel } from './kernel/distro.js';
import { KERNEL_KINDS, LINES, lineOf, parseKernelName } from './kernel/line.js';
import { checkKernelSpec, resolveKernel } from './kernel/target.js';
import { UsageError } from './util/errors.js';
import { bootGuest, type GuestOptions, machineOf } from './vm/guest.js';
import { forcedAccelerator } from './vm/accel.js';
import { cpusFromEnvironment, describeMachine, MAX_CPUS, parseCpus } from './vm/machine.js';
import { GuestDiedError, type Vm } from './vm/vm.js';
import { ExecTimeoutError } from './vm/ssh.js';
import { formatFindings } from './vm/console-scan.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathComponent, repoRoot, resultsRoot } from './util/paths.js';
import { CASES, findCase, RESOLVE_1 } from './suite/cases.js';
import { mainCases, progressText, runMatrix, selectCases } from './suite/plan.js';
import { parseShard, shardOf } from './suite/shard.js';
import { mergeRuns, type RunJson, runJsonOf } from './report/merge.js';
import { type CellResult, cellPassed, cellText } from './suite/session.js';
import { narrate } from './suite/outcome.js';
import { BENCH_PARTS, type BenchPart, runBench } from './suite/bench-run.js';
import { renderBenchReport } from './suite/bench-report.js';
import { benchFigures } from './report/bench-figures.js';
import { compareFigures, DEFAULT_TOLERANCE_PCT, figuresOfJson, renderComparison } from './report/bench-compare.js';
import { renderCompactTable } from './report/compact.js';
import { renderJunit, renderMachines, renderTable } from './report/table.js';
import { renderKtap } from './report/ktap.js';
import { hostToolsOverlay } from './image/build.js';
import { ikeDaemonOverlay } from './image/ike-overlay.js';
import { IKE_DAEMON, type IkeDaemonName } from './km/ike-daemon.js';
import { isIkeDaemon, parseKeyManager, parseResolve, parseTopologyName, type ScenarioOptions, setUpScenario } from './suite/scenario.js';
import { renderFuzzCounts, runFuzz } from './suite/fuzz.js';
import { parseSeed } from './suite/fuzz-plan.js';
import { describeStress, runStress } from './suite/stress.js';
import { randomInt } from 'node:crypto';

// ---- shared options and their help ----------------------------------------

const value = { type: 'string' } as const;
const values = { type: 'string', multiple: true } as const;
const flag = { type: 'boolean' } as const;

/** Every command that boots a guest takes --cpus. */
const MACHINE_OPTIONS = { cpus: value };
const GUEST_OPTIONS = { ...MACHINE_OPTIONS, memory: value, append: values, topology: value, km: value, ns: value, with: values, resolve: value, firewall: value };

const CPUS_HELP = `      --cpus N                      vCPUs of every guest, 1..${MAX_CPUS} (default: LARVAL_CPUS,
                                    else 2); under TCG one host thread per vCPU`;

const MACHINE_HELP = `MACHINE OPTIONS (repro, run, bench, check-series, fuzz; exec and shell too):
${CPUS_HELP}`;

const GUEST_HELP = `GUEST OPTIONS (exec, shell):
${CPUS_HELP}
      --memory MiB                  guest memory, 64..16384 (default 512)
      --append "WORDS"              more kernel command-line words
      --topology transport|tunnel   set up the namespaces, SAs and policies
                                    of a topology (echo servers on the far side)
      --km test|strongswan|libreswan|none
                                    the test key manager in the near side's
                                    namespace (default with --topology: test),
                                    or a charon (strongswan) or a pluto
                                    (libreswan) on each side (IKEv2 PSK, trap
                                    policies; logs kept in results/DAEMON/)
      --ns NAME                     run the command (or shell) in namespace NAME
      --with PROG[,PROG...]         copy host programs and their libraries to
                                    /usr/local/bin in the guest
      --resolve 0|1                 net.core.xfrm_resolve in every namespace
                                    of the topology (default: 1 on a kernel
                                    that has it, i.e. patched)
      --firewall stateful           "ct state established,related accept; drop"
                                    in every namespace of the topology (the
                                    server and gateways also admit new flows
                                    to their services and from IPsec)
      With --topology, PEER and PEER6 name the far host (environment and
      /etc/hosts), e.g. -- ping -c 3 -W 1 PEER`;

const KERNEL_HELP = 'K is distro, stock, patched (default), each maybe with its line (patched-7.3;\nbare names are the 6.12 line\'s), a bzImage, or a kernel build tree.';

const EXIT_HELP = `Exit status: 0 success; 1 a check failed (a cell, a gated figure, a prefix,
the fuzzer) or the harness did (a missing bzImage, a guest that never
booted); 2 a bad option, value or argument. larval exec: the guest command's
own status, ${EXIT.timeout} when it timed out, 128+N when signal N killed it, ${EXIT.guestDied} when the
guest kernel died.`;

const ENV_HELP = `Environment: LARVAL_ACCEL=kvm|tcg|auto, LARVAL_CPUS (default vCPUs, 2),
LARVAL_CACHE (default ~/.cache/larval), LARVAL_KEEP_CONSOLE=1 keeps every
console log under results/consoles, LARVAL_QUIET=1 mutes progress lines,
LARVAL_DEBUG=1 prints the stack of an internal error.`;

// ---- what the options mean --------------------------------------------------

/** --cpus, else LARVAL_CPUS; LARVAL_ACCEL is checked here too, before anything is built or booted. */
function machineOptions(args: ParsedArgs): { cpus: number } {
	forcedAccelerator();
	const cpus = single(args, 'cpus');
	return { cpus: cpus === undefined ? cpusFromEnvironment() : parseCpus(cpus, '--cpus') };
}

function guestOptions(args: ParsedArgs): Pick<GuestOptions, 'cpus' | 'memoryMiB' | 'append'> {
	const memory = single(args, 'memory');
	const append = (args.options.get('append') ?? []).flatMap((a) => a.split(/\s+/)).filter(Boolean);
	return { ...machineOptions(args), memoryMiB: memory === undefined ? undefined : wholeNumber(memory, '--memory (MiB)', { min: 64, max: 16384 }), append };
}

function scenarioOptions(args: ParsedArgs): ScenarioOptions {
	const t = single(args, 'topology');
	const km = single(args, 'km');
	const resolve = single(args, 'resolve');
	const firewall = single(args, 'firewall');
	if (resolve !== undefined && !t) throw new UsageError('--resolve needs --topology: it is set in the topology\'s namespaces');
	if (firewall !== undefined && !(FIREWALLS as readonly string[]).includes(firewall)) throw new UsageError(`--firewall must be ${FIREWALLS.join(' or ')}, not "${firewall}"`);
	return { topology: t ? parseTopologyName(t) : undefined, km: km ? parseKeyManager(km) : undefined, ns: single(args, 'ns'), resolve: resolve === undefined ? undefined : parseResolve(resolve), firewall: firewall as Firewall | undefined };
}

/** The --kernel values (or @fallback), each checked before the first is built or booted. */
function kernelSpecs(args: ParsedArgs, fallback: readonly string[]): string[] {
	const specs = args.options.get('kernel') ?? [...fallback];
	specs.forEach(checkKernelSpec);
	return specs;
}

const repeatOf = (args: ParsedArgs, fallback: string) => wholeNumber(single(args, 'repeat') ?? fallback, '--repeat');

// ---- the commands -----------------------------------------------------------

async function cmdBuild(args: ParsedArgs): Promise<number> {
	const which = single(args, 'kernel') ?? 'all';
	// all, or all-LINE: a line's three kernels.
	const all = /^all(?:-(.+))?$/.exec(which);
	const names = all ? KERNEL_KINDS.map((k) => (all[1] ? `${k}-${lineOf(all[1]).id}` : k)) : [which];
	for (const name of names) {
		const named = parseKernelName(name);
		if (!named) throw new UsageError(`--kernel must be stock, patched, distro or all, each maybe with a line (${Object.keys(LINES).map((l) => `-${l}`).join(', ')}), not "${which}"`);
		if (named.kind === 'distro') {
			const k = await fetchDistroKernel(named.line);
			console.log(`${name}: ${k.release} ${k.bzImage}`);
			continue;
		}
		const k = await buildKernel({ variant: named.kind, line: named.line, config: single(args, 'config') ?? 'base' });
		console.log(`${name}: ${k.release} ${k.bzImage}${k.cached ? ' (cached)' : ` (built in ${k.buildSeconds} s)`}`);
	}
	return EXIT.ok;
}

/** Boots K with the --with programs on board and sets up the scenario the options ask for. */
async function bootForUser(args: ParsedArgs) {
	const opts = scenarioOptions(args);
	const machine = guestOptions(args);
	const kernel = await resolveKernel(single(args, 'kernel') ?? 'patched');
	const tools = (args.options.get('with') ?? []).flatMap((w) => w.split(',')).filter(Boolean);
	const overlays: Array<readonly [string, Buffer]> = tools.length ? [[`with:${tools.join(',')}`, await hostToolsOverlay(tools)]] : [];
	if (isIkeDaemon(opts.km)) overlays.push([opts.km, await ikeDaemonOverlay(opts.km)]);
	const guest = await bootGuest(kernel, { ...machine, overlays });
	try {
		const scenario = await setUpScenario(guest.vm, opts);
		if (opts.topology || opts.ns) process.stderr.write(`[larval] ${scenario.summary}\n`);
		return { ...guest, scenario };
	} catch (e) {
		await guest.vm.stop({ failed: true });
		throw e;
	}
}

async function cmdExec(args: ParsedArgs): Promise<number> {
	if (!args.rest.length) throw new UsageError('needs the guest command after --, as in: larval exec -- uname -a');
	const timeoutMs = positiveNumber(single(args, 'timeout') ?? '60', '--timeout') * 1000;
	const guest = await bootForUser(args);
	const { vm, kernel, scenario } = guest;
	let failed = false;
	try {
		const r = await vm.exec(scenario.wrap(args.rest), {
			timeoutMs,
			onStdout: (d) => process.stdout.write(d),
			onStderr: (d) => process.stderr.write(d),
		});
		process.stderr.write(`[larval] ${kernel.name} ${kernel.release}, ${describeMachine(machineOf(guest))}, boot ${(vm.bootMs / 1000).toFixed(2)} s (console ready ${(vm.guestReadyMs / 1000).toFixed(2)} s), command ${(r.durationMs / 1000).toFixed(2)} s, status ${commandStatusText(r)}\n`);
		return commandExitCode(r);
	} catch (e) {
		failed = true;
		if (e instanceof ExecTimeoutError) {
			process.stderr.write(`larval: ${e.message}; the VM was killed\n`);
			return EXIT.timeout;
		}
		// The kernel died under the command (a guest that never booted failed in bootForUser: status 1).
		if (e instanceof GuestDiedError) {
			process.stderr.write(`larval: ${e.message}\n--- last console lines ---\n${e.consoleTail}\n`);
			return EXIT.guestDied;
		}
		throw e;
	} finally {
		if (vm.alive && scenario.ikeLogs) await keepIkeLogs(vm, scenario.ikeLogs.daemon, scenario.ikeLogs.logs, kernel.name);
		const { consoleLog, findings } = await vm.stop({ failed, keepConsole: args.flags.has('keep-console') });
		if (findings.length) process.stderr.write(`larval: the console shows kernel trouble:\n${formatFindings(findings)}\n`);
		if (consoleLog) process.stderr.write(`larval: console log: ${consoleLog}\n`);
	}
}

/** The IKE daemon's logs outlive the guest: one file per instance and run under results/strongswan/ or results/libreswan/. */
async function keepIkeLogs(vm: Vm, daemon: IkeDaemonName, logs: ReadonlyArray<{ ns: string; log: string }>, kernelName: string): Promise<void> {
	const dir = join(resultsRoot(), daemon);
	mkdirSync(dir, { recursive: true });
	const stamp = new Date().toISOString().replace(/[:.]/g, '-');
	const program = IKE_DAEMON[daemon].program;
	for (const { ns, log } of logs) {
		const text = await readGuestFile(vm, log);
		if (typeof text !== 'string') {
			process.stderr.write(`larval: could not keep the ${program} log (${ns}) ${log}: ${text.why}\n`);
			continue;
		}
		const path = join(dir, `${stamp}-${pathComponent(kernelName)}-${ns}.log`);
		writeFileSync(path, text);
		process.stderr.write(`larval: ${program} log (${ns}): ${path}\n`);
	}
}

/**
 * A guest file's text, or why it could not be read.  Twice, 30 s each, the
 * guest kept on a timeout: on a loaded 2-core host a TCG guest that has just
 * run the user's command can take seconds to open another channel, and a
 * log lost to that is the one a failed run needed.
 */
async function readGuestFile(vm: Vm, path: string): Promise<string | { why: string }> {
	let why = '';
	for (let attempt = 0; attempt < 2 && vm.alive; attempt++) {
		try {
			const r = await vm.exec(`cat ${path}`, { timeoutMs: 30_000, keepOnTimeout: true });
			if (r.code === 0) return r.stdout;
			why = `cat: status ${r.code ?? r.signal}: ${r.stderr.trim()}`;
		} catch (e) {
			why = e instanceof Error ? e.message : String(e);
		}
	}
	return { why: why || 'the guest is not running' };
}

async function cmdShell(args: ParsedArgs): Promise<number> {
	const guest = await bootForUser(args);
	const { vm, scenario } = guest;
	process.stderr.write(`[larval] ${guest.kernel.name} ${guest.kernel.release}, ${describeMachine(machineOf(guest))}\n`);
	try {
		await vm.run('cat > /root/.profile', { stdin: Buffer.from(scenario.profile()) });
		return await vm.shell(process.stdin, process.stdout);
	} finally {
		await vm.stop();
	}
}

function writeReport(path: string | undefined, content: string): void {
	if (!path) return;
	mkdirSync(dirname(path), { recursive: true });
	writeFileSync(path, content);
}

/** A file the user named, read whole; a missing one is their mistake, said in one line. */
function readInput(path: string, what: string): string {
	if (!existsSync(path)) throw new UsageError(`${what} ${path}: no such file`);
	return readFileSync(path, 'utf8');
}

function printCell(c: CellResult, say: (line: string) => void = console.log, prefix = ''): void {
	const ok = cellPassed(c);
	say(`${prefix}${ok ? 'ok  ' : 'FAIL'} ${c.kernel} ${c.caseId} [${c.mode}]: ${cellText(c)}`);
	if (!ok) {
		for (const [i, v] of c.violations.entries()) if (v.length) say(`     run ${i + 1}: ${v.join('; ')}`);
		for (const f of c.findings) say(`     console: ${f.kind} at line ${f.line}: ${f.text}`);
		if (c.error) say(`     ${c.error.split('\n').join('\n     ')}`);
	}
}

async function cmdRepro(args: ParsedArgs): Promise<number> {
	const name = args.positional[0];
	if (!name || name === 'list') {
		const width = Math.max(...CASES.map((c) => c.id.length));
		for (const c of CASES) console.log(`${c.id.padEnd(width)}  ${c.title}  [${[...Object.keys(c.stock), ...(c.resolved ? [RESOLVE_1.id] : [])].join(', ')}]`);
		return EXIT.ok;
	}
	const c = findCase(name);
	if (!c) throw new UsageError(`unknown case "${name}"; \`larval repro list\` names them: ${CASES.map((x) => x.id).join(', ')}`);
	const mode = single(args, 'mode');
	const modes = [...Object.keys(c.stock), ...(c.resolved ? [RESOLVE_1.id] : [])];
	if (mode !== undefined && !modes.includes(mode)) throw new UsageError(`--mode for ${c.id} is one of ${modes.join(', ')}, not "${mode}"`);
	const repeat = repeatOf(args, '3');
	const { cpus } = machineOptions(args);
	const kernels = kernelSpecs(args, ['distro']);
	console.log(`${c.id}: ${c.title}`);
	const cells = await runMatrix({
		kernels,
		cases: [c],
		repeat,
		mode,
		cpus,
		onCell: (cell) => {
			console.log(`\n${cell.kernel} (${cell.release}, ${describeMachine(cell)}), ${cell.mode}:`);
			cell.outcomes.forEach((o, i) => {
				console.log(`  run ${i + 1}:`);
				for (const line of narrate(o)) console.log(`    ${line}`);
			});
			printCell(cell);
		},
	});
	return cells.every(cellPassed) ? EXIT.ok : EXIT.failed;
}

async function cmdRun(args: ParsedArgs): Promise<number> {
	const main = args.flags.has('main');
	const kernels = kernelSpecs(args, main ? ['distro', 'patched'] : ['distro', 'stock', 'patched']);
	const filter = single(args, 'filter');
	const allCases = main && filter === undefined ? mainCases() : selectCases(filter ?? '');
	const shardText = single(args, 'shard');
	const shard = shardText === undefined ? undefined : parseShard(shardText);
	const cases = shard ? shardOf(allCases, shard) : allCases;
	if (shard) console.error(`shard ${shard.index}/${shard.count}: ${cases.length} of ${allCases.length} cases`);
	const repeat = repeatOf(args, main ? '1' : '3');
	const { cpus } = machineOptions(args);
	const started = Date.now();
	// --ktap: stdout carries KTAP alone, for kernel CI systems; what is printed for a person goes to stderr.
	const ktap = args.flags.has('ktap');
	const say = ktap ? console.error : console.log;
	const cells = await runMatrix({ kernels, cases, repeat, cpus, main, onCell: (c, p) => printCell(c, say, progressText(p)) });
	if (ktap) process.stdout.write(renderKtap(cells, kernels));
	const run: RunJson = { kernels, repeat, cpus, ...(shard ? { shard } : {}), caseIds: allCases.map((c) => c.id), main, cells };
	return reportRun(args, run, say, `${repeat} run(s) each; ${Math.round((Date.now() - started) / 1000)} s`);
}

/**
 * What `run` and `merge` print and write of a run: the table (--wide: every
 * run in full), the machines, the verdict line ending in @how, --json and
 * --junit.  1 when a cell is not as expected.
 */
function reportRun(args: ParsedArgs, run: RunJson, say: (text: string) => void, how: string): number {
	const { cells, kernels } = run;
	const table = args.flags.has('wide') ? renderTable(cells, kernels) : renderCompactTable(cells, kernels, { byCase: Boolean(run.main) });
	say(`\n${table}\n\n${renderMachines(cells, kernels)}\n`);
	say(`${cells.filter(cellPassed).length}/${cells.length} cells as expected; ${how}`);
	writeReport(single(args, 'json'), JSON.stringify(run, (_, v) => (typeof v === 'bigint' ? String(v) : v), '\t'));
	writeReport(single(args, 'junit'), renderJunit(cells));
	return cells.every(cellPassed) ? EXIT.ok : EXIT.failed;
}

/** `larval merge`: the shards of one run as one table, JSON and JUnit; 1 when a cell failed. */
async function cmdMerge(args: ParsedArgs): Promise<number> {
	const files = args.positional;
	if (!files.length) throw new UsageError('needs the run files to merge: larval merge RUN.json ...');
	const run = mergeRuns(files.map((name) => ({ name, run: runJsonOf(readInput(name, 'run results'), name) })));
	return reportRun(args, run, console.log, `merged from ${files.length} file(s); ${run.repeat} run(s) each`);
}

function benchParts(args: ParsedArgs): BenchPart[] {
	const only = (args.options.get('only') ?? []).flatMap((o) => o.split(',')).filter(Boolean);
	for (const p of only) if (!(BENCH_PARTS as readonly string[]).includes(p)) throw new UsageError(`--only takes ${BENCH_PARTS.join(', ')}, not "${p}"`);
	return only.length ? (only as BenchPart[]) : [...BENCH_PARTS];
}

function tolerance(args: ParsedArgs): number {
	const given = single(args, 'tolerance');
	const t = Number(given ?? DEFAULT_TOLERANCE_PCT);
	if (given?.trim() === '' || !Number.isFinite(t) || t < 0) throw new UsageError(`--tolerance must be a percentage, not "${given}"`);
	return t;
}

type Figures = ReturnType<typeof figuresOfJson>;

/** A `bench --json` file's figures; a missing or malformed file is the user's mistake. */
const figuresOfFile = (path: string): Figures => figuresOfJson(readInput(path, 'bench figures'), path);

/** Prints the comparison of two runs' figures; 1 when a gated figure regressed. */
function compareBench(baselinePath: string, baseline: Figures, current: Figures, tolerancePct: number, partsRun?: ReadonlySet<string>): number {
	const c = compareFigures(baseline, current, tolerancePct, partsRun);
	console.log(`\nAgainst ${baselinePath}:\n${renderComparison(c)}`);
	return c.regressions.length ? EXIT.failed : EXIT.ok;
}

async function cmdBench(args: ParsedArgs): Promise<number> {
	const names = kernelSpecs(args, ['stock', 'patched']);
	const repeat = repeatOf(args, '5');
	const parts = benchParts(args);
	const tolerancePct = tolerance(args);
	const machine = machineOptions(args);
	// Read before the run: a baseline that is not there should not cost an hour of benching to find out.
	const baselinePath = single(args, 'compare');
	const baseline = baselinePath === undefined ? undefined : figuresOfFile(baselinePath);
	const kernels = [];
	for (const k of names) kernels.push(await resolveKernel(k));
	const started = Date.now();
	const report = await runBench(kernels, repeat, parts, machine);
	const figures = benchFigures(report);
	console.log(renderBenchReport(report));
	console.log(`median of ${repeat} runs each; latencies on the guest's CLOCK_MONOTONIC, boots on the host's clock; ${report.machines.join('; ')}; ${Math.round((Date.now() - started) / 1000)} s`);
	writeReport(single(args, 'json'), JSON.stringify({ ...report, figures }, null, '\t'));
	return baseline && baselinePath ? compareBench(baselinePath, baseline, figures, tolerancePct, new Set(parts)) : EXIT.ok;
}

async function cmdBenchCompare(args: ParsedArgs): Promise<number> {
	const [baseline, current] = args.positional;
	if (!baseline || !current) throw new UsageError('needs two files: larval bench-compare BASELINE.json CURRENT.json');
	const tolerancePct = tolerance(args);
	return compareBench(baseline, figuresOfFile(baseline), figuresOfFile(current), tolerancePct);
}

async function cmdCheckSeries(args: ParsedArgs): Promise<number> {
	const build = !args.flags.has('no-build');
	const { cpus } = machineOptions(args);
	const started = Date.now();
	const lineArg = single(args, 'line');
	const report = await checkSeries({
		line: lineArg === undefined ? undefined : lineOf(lineArg),
		from: single(args, 'from'),
		to: single(args, 'to'),
		build,
		boot: build && !args.flags.has('no-boot'),
		cpus,
		onRow: (r) => console.log(`${rowPassed(r) ? 'ok  ' : 'FAIL'} 1..${r.n} ${r.patch}${r.boot.machine ? ` (${describeMachine(r.boot.machine)})` : ''}`),
	});
	const { rows, setup } = report;
	console.log(`\n${renderSeriesTable(rows)}\n`);
	const failures = renderFailures(rows);
	if (failures) console.log(`${failures}\n`);
	const configured = setup.configureSeconds === undefined ? '' : `, configure ${Math.round(setup.configureSeconds)} s`;
	const machines = bootedMachines(rows);
	const booted = machines.length ? `; booted on ${machines.join(' / ')}` : '';
	console.log(`${rows.filter(rowPassed).length}/${rows.length} prefixes sound (patches ${report.range.from}..${report.range.to}); linux-source ${report.sourceVersion}${booted}; unpack ${Math.round(setup.unpackSeconds)} s${configured}; ${Math.round((Date.now() - started) / 1000)} s in all; logs in ${report.scratch}/logs`);
	writeReport(single(args, 'json'), JSON.stringify(report, null, '\t'));
	return rows.every(rowPassed) ? EXIT.ok : EXIT.failed;
}

async function cmdFuzz(args: ParsedArgs): Promise<number> {
	const seedArg = single(args, 'seed');
	const seed = seedArg === undefined ? randomInt(2 ** 32) : parseSeed(seedArg);
	const minutes = positiveNumber(single(args, 'minutes') ?? '1', '--minutes');
	const { cpus } = machineOptions(args);
	const [spec = 'patched'] = kernelSpecs(args, ['patched']);
	const kernel = await resolveKernel(spec, { config: single(args, 'config') ?? 'base' });
	console.log(`seed ${seed}`);
	const r = await runFuzz(kernel, { seed, minutes, cpus });
	console.log(`${r.kernel} (${r.config}) ${r.release}, ${describeMachine(r)}: boot ${(r.bootMs / 1000).toFixed(1)} s, fuzzing ${(r.fuzzMs / 1000).toFixed(1)} s`);
	if (r.summary) console.log(`${r.summary.ops} operations:\n${renderFuzzCounts(r.summary)}`);
	for (const f of r.findings) console.log(`\n${f.kind} at console line ${f.line}:\n${f.report}`);
	if (r.hangDiagnosis) console.log(`\nwhat the guest said about the stuck fuzzer:\n${r.hangDiagnosis.trimEnd()}`);
	if (r.leaks) console.log(`kmemleak: ${r.leaks.length} unreferenced object(s)`);
	writeReport(single(args, 'json'), JSON.stringify(r, null, '\t'));
	if (!r.problems.length) {
		console.log(`clean; rerun with: ${r.reproduce}`);
		return EXIT.ok;
	}
	console.log(`\nFAIL\n${r.problems.join('\n')}`);
	if (r.consoleLog) console.log(`console log: ${r.consoleLog}`);
	if (r.artifacts) console.log(`fuzzer output: ${r.artifacts}`);
	return EXIT.failed;
}

async function cmdStress(args: ParsedArgs): Promise<number> {
	const seedArg = single(args, 'seed');
	const seed = seedArg === undefined ? randomInt(2 ** 31) : parseSeed(seedArg);
	const rounds = wholeNumber(single(args, 'rounds') ?? '10000', '--rounds');
	const firstRound = wholeNumber(single(args, 'first-round') ?? '0', '--first-round', { min: 0 });
	const minutesArg = single(args, 'minutes');
	const minutes = minutesArg === undefined ? undefined : positiveNumber(minutesArg, '--minutes');
	const resolveArg = single(args, 'resolve');
	const resolve = resolveArg === undefined ? undefined : parseResolve(resolveArg);
	const maxFailuresArg = single(args, 'max-failures');
	const maxFailures = maxFailuresArg === undefined ? undefined : wholeNumber(maxFailuresArg, '--max-failures');
	// not LARVAL_CPUS: the stress's own default (4 vCPUs) unless told
	const cpus = single(args, 'cpus') === undefined ? undefined : machineOptions(args).cpus;
	const [spec = 'patched'] = kernelSpecs(args, ['patched']);
	const kernel = await resolveKernel(spec, { config: single(args, 'config') ?? 'base' });
	console.log(`seed ${seed}`);
	const r = await runStress({ kernel, cpus, seed, rounds, firstRound, minutes, resolve, maxFailures });
	console.log(describeStress(r));
	for (const f of r.findings) console.log(`\n${f.kind} at console line ${f.line}:\n${f.report}`);
	writeReport(single(args, 'json'), JSON.stringify(r, null, '\t'));
	if (!r.problems.length) {
		console.log(`clean; rerun with: ${r.rerun}`);
		return EXIT.ok;
	}
	console.log(`\nFAIL\n${r.problems.join('\n')}`);
	if (r.artifacts) console.log(`kept: ${r.artifacts}`);
	return EXIT.failed;
}

// ---- the command table: one entry per command -------------------------------

interface Command extends ArgsSpec {
	/** The synopsis line and what the command does, for its --help and for `larval --help`. */
	usage: string;
	/** Shared sections its --help ends with. */
	notes: readonly string[];
	run: (a: ParsedArgs) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
	build: {
		usage: `build [--kernel stock|patched|distro|all[-LINE]] [--config FLAVOUR]
      Build kernels from Debian's kernel source package of a line
      (patched: with that line's series); distro fetches Debian's cloud
      kernel of the line.  Lines: 7.3 (mainline, linux-source-7.3 from
      trixie-backports, kernel-patches/mainline-7.3/series) and 6.12 (the
      backport, linux-source-6.12, kernel-patches/series); a bare name is
      the 6.12 line's (patched = patched-6.12); all-7.3 is the line's three.`,
		options: { kernel: value, config: value },
		notes: [],
		run: cmdBuild,
	},
	exec: {
		usage: `exec [--kernel K] [--timeout S] [--keep-console] [GUEST OPTIONS] -- CMD ARGS...
      Boot K, run CMD in the guest, print its output, exit with its status.`,
		options: { kernel: value, timeout: value, 'keep-console': flag, ...GUEST_OPTIONS },
		rest: true,
		notes: [GUEST_HELP, KERNEL_HELP],
		run: cmdExec,
	},
	shell: {
		usage: `shell [--kernel K] [GUEST OPTIONS]
      An interactive shell in a booted guest.`,
		options: { kernel: value, ...GUEST_OPTIONS },
		notes: [GUEST_HELP, KERNEL_HELP],
		run: cmdShell,
	},
	repro: {
		usage: `repro list | repro NAME [--kernel K ...] [--repeat N] [--cpus N] [--mode larval_drop=0|larval_drop=1|xfrm_resolve=1]
      List the reproducible stock behaviours, or run one (default on distro)
      and say what the program saw (calls, errnos, times, packets echoed or lost).`,
		options: { kernel: values, repeat: value, mode: value, ...MACHINE_OPTIONS },
		positionals: 1,
		notes: [MACHINE_HELP, KERNEL_HELP],
		run: cmdRepro,
	},
	run: {
		usage: `run [--main] [--kernel K ...] [--filter PATTERN] [--repeat N] [--shard I/N] [--cpus N] [--json FILE] [--junit FILE] [--ktap] [--wide]
      Run the semantics matrix on each kernel (default: distro stock
      patched), each progress line saying which cell of how many and the
      time left, and print one table: a row per case and mode, a column per
      kernel, each cell a verdict mark and the runs' median in a few words
      (about 160 columns for three kernels); --wide: every run in full.
      --main: the main job (make run): the README table's behaviours, one
      cell each per kernel (the series' mode where the kernel has it, else
      stock's default), once; default kernels distro and patched.
      --ktap: KTAP on stdout instead (a subtest per kernel), the rest on stderr.
      --shard I/N: every N-th case from the I-th (all its kernels and modes),
      for N machines or CI jobs; \`larval merge\` joins their --json files.`,
		options: { main: flag, kernel: values, filter: value, repeat: value, shard: value, json: value, junit: value, ktap: flag, wide: flag, ...MACHINE_OPTIONS },
		notes: [MACHINE_HELP, KERNEL_HELP],
		run: cmdRun,
	},
	merge: {
		usage: `merge RUN.json ... [--json FILE] [--junit FILE] [--wide]
      The \`run --shard I/N --json\` files of one run as one: the table, the
      verdict line, JSON and JUnit an unsharded run would give.  Every
      shard once, the same kernels, repeat count and vCPUs, no cell twice,
      or a one-line error.  Exit 1 when a cell is not as expected.`,
		options: { json: value, junit: value, wide: flag },
		positionals: 64,
		notes: [],
		run: cmdMerge,
	},
	bench: {
		usage: `bench [--kernel K ...] [--repeat N] [--cpus N] [--only latency|fastpath|insns|memory ...]
        [--json FILE] [--compare BASELINE.json] [--tolerance PCT]
      Side-by-side figures (median of N): release latency of a held packet
      against steady-state one-way latency; TCP connect through a trap
      policy (minus the key manager's time) against a keyed connect; the
      wake cost of 1 against 1,000 sockets waiting on one acquire; UDP
      packets per second through ESP with the SA in place, each kernel
      against stock (N rounds booting every kernel in turn), and the boot
      to the first command; guest instructions per sendto(), send(),
      poll() and TCP round trip with the SA in place, both families, the
      series' switch off and on (N rounds under QEMU's -icount, one vCPU:
      deterministic, compared on their own measured noise); memory per
      pending acquire and per held packet at 10,000 acquires.
      --compare: as bench-compare, after.`,
		options: { kernel: values, repeat: value, only: values, json: value, compare: value, tolerance: value, ...MACHINE_OPTIONS },
		notes: [MACHINE_HELP, KERNEL_HELP],
		run: cmdBench,
	},
	'bench-compare': {
		usage: `bench-compare BASELINE.json CURRENT.json [--tolerance PCT]
      Per figure of two \`bench --json\` files: baseline, current, change.
      Exits 1 when a gated figure (the series' ratios) got worse by more
      than PCT percent (default ${DEFAULT_TOLERANCE_PCT}) or is missing.`,
		options: { tolerance: value },
		positionals: 2,
		notes: [],
		run: cmdBenchCompare,
	},
	'check-series': {
		usage: `check-series [--line 6.12|7.3] [--from N] [--to N] [--no-build] [--no-boot] [--cpus N] [--json FILE]
      Bisectability: for each patch N of the line's series (6.12, the
      default: kernel-patches/series; 7.3: kernel-patches/mainline-7.3), checkpatch
      --strict, then apply it on top of 1..N-1, build that prefix
      incrementally (and again with CONFIG_IPV6=n, in a build directory of
      its own), boot it and run a few stock-mode compatibility rows.
      One row per patch; exits 1 if any prefix failed.`,
		options: { line: value, from: value, to: value, json: value, 'no-build': flag, 'no-boot': flag, ...MACHINE_OPTIONS },
		notes: [MACHINE_HELP],
		run: cmdCheckSeries,
	},
	stress: {
		usage: `stress [--kernel K] [--config FLAVOUR] [--cpus N] [--rounds R] [--seed S] [--first-round F]
        [--minutes M] [--resolve 0|1] [--max-failures N] [--json FILE]
      Boot K (default patched; --config race for KCSAN, debug for KASAN)
      on N vCPUs (default 4) and run larval-stress for R rounds (default
      10,000; or until M minutes have passed): each round flushes the near
      side's SAs and starts, on every CPU at once, non-blocking sendto()
      streams, blocking senders without SO_SNDTIMEO, pollers, epoll waiters
      and TCP connects, while the key manager installs after 0-50 ms (some
      rounds by ALLOCSPI + UPDSA).  Per round: no held packet or wait
      failed, no larval state left, one ACQUIRE per larval state, no sender
      asleep 1 s after the install, order kept per flow, a clean console.
      Exits 1 naming the first failed round and the command that reruns it.
      The program stops after N failed rounds (default 20); a larger N
      keeps a race flavour looking for data races on a series that fails.`,
		options: { kernel: value, config: value, seed: value, rounds: value, 'first-round': value, minutes: value, resolve: value, 'max-failures': value, json: value, ...MACHINE_OPTIONS },
		notes: [MACHINE_HELP, KERNEL_HELP],
		run: cmdStress,
	},
	fuzz: {
		usage: `fuzz [--kernel K] [--config FLAVOUR] [--seed S] [--minutes M] [--cpus N] [--json FILE]
      Boot K (with --config debug: its KASAN/lockdep/kmemleak build) and
      run larval-fuzz for M minutes (default 1): random XFRM policies,
      SAs, ACQUIRE answers, sysctl flips and socket calls in two
      namespaces, from seed S (default: random, printed).  Exits 1 on a
      kernel splat, a hang, a call that overran its bound or a leak,
      naming the seed and the command that reruns it.`,
		options: { kernel: value, config: value, seed: value, minutes: value, json: value, ...MACHINE_OPTIONS },
		notes: [MACHINE_HELP, KERNEL_HELP],
		run: cmdFuzz,
	},
};

const USAGE = `usage: larval COMMAND [OPTIONS]
       larval COMMAND --help | larval --help | larval --version

${Object.values(COMMANDS).map((c) => `  ${c.usage}`).join('\n')}

${[GUEST_HELP, MACHINE_HELP, KERNEL_HELP, EXIT_HELP, ENV_HELP].join('\n\n')}
`;

function commandUsage(c: Command): string {
	const [synopsis = '', ...rest] = c.usage.split('\n');
	return `usage: larval ${synopsis}\n${rest.join('\n')}\n\n${[...c.notes, EXIT_HELP].join('\n\n')}\n`;
}

/** Own entries only: "constructor" is no command. */
function commandNamed(name: string): Command | undefined {
	return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

function version(): string {
	return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: readonly string[]): Promise<number> {
	const [name, ...rest] = argv;
	if (name === undefined) {
		process.stderr.write(USAGE);
		return EXIT.usage;
	}
	if (name === '--help' || name === '-h' || name === 'help') {
		const topic = name === 'help' ? rest[0] : undefined;
		const c = topic === undefined ? undefined : commandNamed(topic);
		if (topic !== undefined && !c) throw new UsageError(`no command "${topic}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
		process.stdout.write(c ? commandUsage(c) : USAGE);
		return EXIT.ok;
	}
	if (name === '--version' || name === '-V') {
		process.stdout.write(`larval ${version()}\n`);
		return EXIT.ok;
	}
	const cmd = commandNamed(name);
	if (!cmd) throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
	const args = parseArgs(rest, cmd);
	if (args.help) {
		process.stdout.write(commandUsage(cmd));
		return EXIT.ok;
	}
	return cmd.run(args);
}

const argv = process.argv.slice(2);
main(argv).then(
	(code) => process.exit(code),
	(e: unknown) => {
		const command = argv[0] !== undefined && commandNamed(argv[0]) ? argv[0] : undefined;
		const { code, text } = errorReport(e, command, process.env.LARVAL_DEBUG === '1');
		process.stderr.write(text);
		process.exit(code);
	},
);
