#!/usr/bin/env node
import { parseArgs, positiveNumber, single, type ParsedArgs } from './cli-args.js';
import { buildKernel } from './kernel/build.js';
import { checkSeries, renderFailures, renderSeriesTable, rowPassed } from './kernel/check-series.js';
import { fetchDistroKernel } from './kernel/distro.js';
import { resolveKernel } from './kernel/target.js';
import { LarvalError } from './util/errors.js';
import { bootGuest } from './vm/guest.js';
import { GuestDiedError, type Vm } from './vm/vm.js';
import { ExecTimeoutError } from './vm/ssh.js';
import { formatFindings } from './vm/console-scan.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resultsRoot } from './util/paths.js';
import { CASES, findCase, RESOLVE_1 } from './suite/cases.js';
import { runMatrix, selectCases } from './suite/plan.js';
import { type CellResult, cellPassed, cellText } from './suite/session.js';
import { narrate } from './suite/outcome.js';
import { BENCH_PARTS, type BenchPart, runBench } from './suite/bench-run.js';
import { renderBenchReport } from './suite/bench-report.js';
import { benchFigures } from './report/bench-figures.js';
import { compareFigures, DEFAULT_TOLERANCE_PCT, figuresOfJson, renderComparison } from './report/bench-compare.js';
import { renderJunit, renderTable } from './report/table.js';
import { hostToolsOverlay, strongswanOverlay } from './image/build.js';
import { parseKeyManager, parseResolve, parseTopologyName, type ScenarioOptions, setUpScenario } from './suite/scenario.js';
import { renderFuzzCounts, runFuzz } from './suite/fuzz.js';
import { parseSeed } from './suite/fuzz-plan.js';
import { randomInt } from 'node:crypto';

const USAGE = `usage: larval COMMAND [OPTIONS]

  build [--kernel stock|patched|distro|all] [--config FLAVOUR]
      Build kernels from Debian's linux-source-6.12 (patched: with
      kernel-patches/series); distro fetches Debian's cloud kernel.
  exec [--kernel K] [--timeout S] [--keep-console] [GUEST OPTIONS] -- CMD ARGS...
      Boot K, run CMD in the guest, print its output, exit with its status
      (255 when the guest died, 124 on timeout).
  shell [--kernel K] [GUEST OPTIONS]
      An interactive shell in a booted guest.
  GUEST OPTIONS:
      --topology transport|tunnel   set up the namespaces, SAs and policies
                                    of a topology (echo servers on the far side)
      --km test|strongswan|none     the test key manager in the near side's
                                    namespace (default with --topology: test),
                                    or a charon on each side (IKEv2 PSK, trap
                                    policies; logs kept in results/strongswan/)
      --ns NAME                     run the command (or shell) in namespace NAME
      --with PROG[,PROG...]         copy host programs and their libraries to
                                    /usr/local/bin in the guest
      --resolve 0|1                 net.core.xfrm_resolve in every namespace
                                    of the topology (default: 1 on a kernel
                                    that has it, i.e. patched)
      With --topology, PEER and PEER6 name the far host (environment and
      /etc/hosts), e.g. -- ping -c 3 -W 1 PEER

  repro list | repro NAME [--kernel K] [--repeat N] [--mode larval_drop=0|larval_drop=1|xfrm_resolve=1]
      List the reproducible stock behaviours, or run one and say what the
      program saw (calls, errnos, times, packets echoed or lost).
  run [--kernel K ...] [--filter PATTERN] [--repeat N] [--json FILE] [--junit FILE]
      Run the semantics matrix on each kernel (default: distro stock patched)
      and print one table: a row per case and mode, a column per kernel.
  bench [--kernel K ...] [--repeat N] [--only latency|fastpath|memory ...]
        [--json FILE] [--compare BASELINE.json] [--tolerance PCT]
      Side-by-side figures (median of N): release latency of a held packet
      against steady-state one-way latency; TCP connect through a trap
      policy (minus the key manager's time) against a keyed connect; the
      wake cost of 1 against 1,000 sockets waiting on one acquire; UDP
      packets per second through ESP with the SA in place, each kernel
      against stock (N rounds booting every kernel in turn), and the boot
      to the first command; memory per pending acquire and per held
      packet at 10,000 acquires.  --compare: as bench-compare, after.
  bench-compare BASELINE.json CURRENT.json [--tolerance PCT]
      Per figure of two \`bench --json\` files: baseline, current, change.
      Exits 1 when a gated figure (the series' ratios) got worse by more
      than PCT percent (default ${DEFAULT_TOLERANCE_PCT}) or is missing.
  check-series [--from N] [--to N] [--no-build] [--no-boot] [--json FILE]
      Bisectability: for each patch N of kernel-patches/series, checkpatch
      --strict, then apply it on top of 1..N-1, build that prefix
      incrementally, boot it and run a few stock-mode compatibility rows.
      One row per patch; exits 1 if any prefix failed.
  fuzz [--kernel K] [--config FLAVOUR] [--seed S] [--minutes M] [--json FILE]
      Boot K (with --config debug: its KASAN/lockdep/kmemleak build) and
      run larval-fuzz for M minutes (default 1): random XFRM policies,
      SAs, ACQUIRE answers, sysctl flips and socket calls in two
      namespaces, from seed S (default: random, printed).  Exits 1 on a
      kernel splat, a hang, a call that overran its bound or a leak,
      naming the seed and the command that reruns it.

K is distro, stock, patched (default), a bzImage, or a kernel build tree.
Environment: LARVAL_ACCEL=kvm|tcg|auto, LARVAL_CACHE (default ~/.cache/larval),
LARVAL_KEEP_CONSOLE=1 keeps every console log under results/consoles.
`;

async function cmdBuild(args: ParsedArgs): Promise<number> {
	const which = single(args, 'kernel', 'all');
	const names = which === 'all' ? ['stock', 'patched', 'distro'] : [which];
	for (const name of names) {
		if (name === 'distro') {
			const k = await fetchDistroKernel();
			console.log(`distro: ${k.release} ${k.bzImage}`);
			continue;
		}
		if (name !== 'stock' && name !== 'patched') throw new LarvalError(`--kernel must be stock, patched, distro or all, not ${which}`);
		const k = await buildKernel({ variant: name, config: single(args, 'config', 'base') });
		console.log(`${name}: ${k.release} ${k.bzImage}${k.cached ? ' (cached)' : ` (built in ${k.buildSeconds} s)`}`);
	}
	return 0;
}

const GUEST_OPTIONS = ['topology', 'km', 'ns', 'with', 'resolve'];

function scenarioOptions(args: ParsedArgs): ScenarioOptions {
	const t = args.options.get('topology')?.[0];
	const km = args.options.get('km')?.[0];
	const resolve = args.options.get('resolve')?.[0];
	if (resolve !== undefined && !t) throw new LarvalError('--resolve needs --topology: it is set in the topology\'s namespaces');
	return { topology: t ? parseTopologyName(t) : undefined, km: km ? parseKeyManager(km) : undefined, ns: args.options.get('ns')?.[0], resolve: resolve === undefined ? undefined : parseResolve(resolve) };
}

/** Boots K with the --with programs on board and sets up the scenario the options ask for. */
async function bootForUser(args: ParsedArgs) {
	const opts = scenarioOptions(args);
	const tools = (args.options.get('with') ?? []).flatMap((w) => w.split(',')).filter(Boolean);
	const overlays: Array<readonly [string, Buffer]> = tools.length ? [[`with:${tools.join(',')}`, await hostToolsOverlay(tools)]] : [];
	if (opts.km === 'strongswan') overlays.push(['strongswan', await strongswanOverlay()]);
	const kernel = await resolveKernel(single(args, 'kernel', 'patched'));
	const guest = await bootGuest(kernel, { overlays });
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
	if (!args.rest.length) throw new LarvalError('larval exec needs a command after --');
	const timeoutMs = positiveNumber(single(args, 'timeout', '60'), '--timeout') * 1000;
	const { vm, accel, kernel, scenario } = await bootForUser(args);
	let failed = false;
	try {
		const r = await vm.exec(scenario.wrap(args.rest), {
			timeoutMs,
			onStdout: (d) => process.stdout.write(d),
			onStderr: (d) => process.stderr.write(d),
		});
		process.stderr.write(`[larval] ${kernel.name} ${kernel.release}, ${accel.accel}, boot ${(vm.bootMs / 1000).toFixed(2)} s (console ready ${(vm.guestReadyMs / 1000).toFixed(2)} s), command ${(r.durationMs / 1000).toFixed(2)} s, status ${r.code ?? r.signal}\n`);
		return r.code ?? 255;
	} catch (e) {
		failed = true;
		if (e instanceof ExecTimeoutError) {
			process.stderr.write(`larval: ${e.message}; the VM was killed\n`);
			return 124;
		}
		throw e;
	} finally {
		if (vm.alive && scenario.charonLogs.length) await keepCharonLogs(vm, scenario.charonLogs, kernel.name);
		const { consoleLog, findings } = await vm.stop({ failed, keepConsole: args.flags.has('keep-console') });
		if (findings.length) process.stderr.write(`larval: the console shows kernel trouble:\n${formatFindings(findings)}\n`);
		if (consoleLog) process.stderr.write(`larval: console log: ${consoleLog}\n`);
	}
}

/** charon's logs outlive the guest: one file per charon and run under results/strongswan/. */
async function keepCharonLogs(vm: Vm, logs: ReadonlyArray<{ ns: string; log: string }>, kernelName: string): Promise<void> {
	const dir = join(resultsRoot(), 'strongswan');
	mkdirSync(dir, { recursive: true });
	const stamp = new Date().toISOString().replace(/[:.]/g, '-');
	for (const { ns, log } of logs) {
		const r = await vm.exec(`cat ${log}`, { timeoutMs: 10_000 }).catch(() => undefined);
		if (!r) continue;
		const path = join(dir, `${stamp}-${kernelName.replace(/[^A-Za-z0-9_.-]/g, '_')}-${ns}.log`);
		writeFileSync(path, r.stdout);
		process.stderr.write(`larval: charon log (${ns}): ${path}\n`);
	}
}

async function cmdShell(args: ParsedArgs): Promise<number> {
	const { vm, scenario } = await bootForUser(args);
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

function printCell(c: CellResult): void {
	const ok = cellPassed(c);
	console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.kernel} ${c.caseId} [${c.mode}]: ${cellText(c)}`);
	if (!ok) {
		for (const [i, v] of c.violations.entries()) if (v.length) console.log(`     run ${i + 1}: ${v.join('; ')}`);
		for (const f of c.findings) console.log(`     console: ${f.kind} at line ${f.line}: ${f.text}`);
		if (c.error) console.log(`     ${c.error.split('\n').join('\n     ')}`);
	}
}

async function cmdRepro(args: ParsedArgs): Promise<number> {
	const name = args.positional[0];
	if (!name || name === 'list') {
		const width = Math.max(...CASES.map((c) => c.id.length));
		for (const c of CASES) console.log(`${c.id.padEnd(width)}  ${c.title}  [${[...Object.keys(c.stock), ...(c.resolved ? [RESOLVE_1.id] : [])].join(', ')}]`);
		return 0;
	}
	const c = findCase(name);
	if (!c) throw new LarvalError(`unknown case "${name}"; \`larval repro list\` names them: ${CASES.map((x) => x.id).join(', ')}`);
	const repeat = positiveNumber(single(args, 'repeat', '3'), '--repeat');
	console.log(`${c.id}: ${c.title}`);
	const cells = await runMatrix({
		kernels: [single(args, 'kernel', 'distro')],
		cases: [c],
		repeat,
		mode: args.options.get('mode')?.[0],
		onCell: (cell) => {
			console.log(`\n${cell.kernel} (${cell.release}, ${cell.accel}), ${cell.mode}:`);
			cell.outcomes.forEach((o, i) => {
				console.log(`  run ${i + 1}:`);
				for (const line of narrate(o)) console.log(`    ${line}`);
			});
			printCell(cell);
		},
	});
	return cells.every(cellPassed) ? 0 : 1;
}

async function cmdRun(args: ParsedArgs): Promise<number> {
	const kernels = args.options.get('kernel') ?? ['distro', 'stock', 'patched'];
	const cases = selectCases(single(args, 'filter', ''));
	const repeat = positiveNumber(single(args, 'repeat', '3'), '--repeat');
	const started = Date.now();
	const cells = await runMatrix({ kernels, cases, repeat, onCell: printCell });
	console.log(`\n${renderTable(cells, kernels)}\n`);
	const accels = [...new Set(cells.map((c) => `${c.kernel}: ${c.accel}`))].join(', ');
	console.log(`${cells.filter(cellPassed).length}/${cells.length} cells as expected; ${repeat} run(s) each; accelerator ${accels}; ${Math.round((Date.now() - started) / 1000)} s`);
	writeReport(args.options.get('json')?.[0], JSON.stringify({ kernels, repeat, cells }, (_, v) => (typeof v === 'bigint' ? String(v) : v), '\t'));
	writeReport(args.options.get('junit')?.[0], renderJunit(cells));
	return cells.every(cellPassed) ? 0 : 1;
}

function benchParts(args: ParsedArgs): BenchPart[] {
	const only = (args.options.get('only') ?? []).flatMap((o) => o.split(',')).filter(Boolean);
	for (const p of only) if (!(BENCH_PARTS as readonly string[]).includes(p)) throw new LarvalError(`--only takes ${BENCH_PARTS.join(', ')}, not ${p}`);
	return only.length ? (only as BenchPart[]) : [...BENCH_PARTS];
}

function tolerance(args: ParsedArgs): number {
	const t = Number(single(args, 'tolerance', String(DEFAULT_TOLERANCE_PCT)));
	if (!Number.isFinite(t) || t < 0) throw new LarvalError(`--tolerance must be a percentage, not ${single(args, 'tolerance', '')}`);
	return t;
}

/** Prints the comparison of two runs' figures; 1 when a gated figure regressed. */
function compareBenchFiles(baselinePath: string, current: ReturnType<typeof figuresOfJson>, tolerancePct: number): number {
	const c = compareFigures(figuresOfJson(readFileSync(baselinePath, 'utf8'), baselinePath), current, tolerancePct);
	console.log(`\nAgainst ${baselinePath}:\n${renderComparison(c)}`);
	return c.regressions.length ? 1 : 0;
}

async function cmdBench(args: ParsedArgs): Promise<number> {
	const names = args.options.get('kernel') ?? ['stock', 'patched'];
	const repeat = positiveNumber(single(args, 'repeat', '5'), '--repeat');
	const parts = benchParts(args);
	const tolerancePct = tolerance(args);
	const kernels = [];
	for (const k of names) kernels.push(await resolveKernel(k));
	const started = Date.now();
	const report = await runBench(kernels, repeat, parts);
	const figures = benchFigures(report);
	console.log(renderBenchReport(report));
	console.log(`median of ${repeat} runs each; latencies on the guest's CLOCK_MONOTONIC, boots on the host's clock; accelerator ${report.accel.join(', ')}; ${Math.round((Date.now() - started) / 1000)} s`);
	writeReport(args.options.get('json')?.[0], JSON.stringify({ ...report, figures }, null, '\t'));
	const baseline = args.options.get('compare')?.[0];
	return baseline ? compareBenchFiles(baseline, figures, tolerancePct) : 0;
}

async function cmdBenchCompare(args: ParsedArgs): Promise<number> {
	const [baseline, current] = args.positional;
	if (!baseline || !current || args.positional.length > 2) throw new LarvalError('usage: larval bench-compare BASELINE.json CURRENT.json [--tolerance PCT]');
	return compareBenchFiles(baseline, figuresOfJson(readFileSync(current, 'utf8'), current), tolerance(args));
}

async function cmdCheckSeries(args: ParsedArgs): Promise<number> {
	const build = !args.flags.has('no-build');
	const started = Date.now();
	const report = await checkSeries({
		from: args.options.get('from')?.[0],
		to: args.options.get('to')?.[0],
		build,
		boot: build && !args.flags.has('no-boot'),
		onRow: (r) => console.log(`${rowPassed(r) ? 'ok  ' : 'FAIL'} 1..${r.n} ${r.patch}`),
	});
	const { rows, setup } = report;
	console.log(`\n${renderSeriesTable(rows)}\n`);
	const failures = renderFailures(rows);
	if (failures) console.log(`${failures}\n`);
	const configured = setup.configureSeconds === undefined ? '' : `, configure ${Math.round(setup.configureSeconds)} s`;
	console.log(`${rows.filter(rowPassed).length}/${rows.length} prefixes sound (patches ${report.range.from}..${report.range.to}); linux-source ${report.sourceVersion}; unpack ${Math.round(setup.unpackSeconds)} s${configured}; ${Math.round((Date.now() - started) / 1000)} s in all; logs in ${report.scratch}/logs`);
	writeReport(args.options.get('json')?.[0], JSON.stringify(report, null, '\t'));
	return rows.every(rowPassed) ? 0 : 1;
}

async function cmdFuzz(args: ParsedArgs): Promise<number> {
	const seedArg = single(args, 'seed', '');
	const seed = seedArg === '' ? randomInt(2 ** 32) : parseSeed(seedArg);
	const minutes = positiveNumber(single(args, 'minutes', '1'), '--minutes');
	const kernel = await resolveKernel(single(args, 'kernel', 'patched'), { config: single(args, 'config', 'base') });
	console.log(`seed ${seed}`);
	const r = await runFuzz(kernel, { seed, minutes });
	console.log(`${r.kernel} (${r.config}) ${r.release}, ${r.accel}: boot ${(r.bootMs / 1000).toFixed(1)} s, fuzzing ${(r.fuzzMs / 1000).toFixed(1)} s`);
	if (r.summary) console.log(`${r.summary.ops} operations:\n${renderFuzzCounts(r.summary)}`);
	for (const f of r.findings) console.log(`\n${f.kind} at console line ${f.line}:\n${f.report}`);
	if (r.hangDiagnosis) console.log(`\nwhat the guest said about the stuck fuzzer:\n${r.hangDiagnosis.trimEnd()}`);
	if (r.leaks) console.log(`kmemleak: ${r.leaks.length} unreferenced object(s)`);
	writeReport(args.options.get('json')?.[0], JSON.stringify(r, null, '\t'));
	if (!r.problems.length) {
		console.log(`clean; rerun with: ${r.reproduce}`);
		return 0;
	}
	console.log(`\nFAIL\n${r.problems.join('\n')}`);
	if (r.consoleLog) console.log(`console log: ${r.consoleLog}`);
	if (r.artifacts) console.log(`fuzzer output: ${r.artifacts}`);
	return 1;
}

const COMMANDS: Record<string, { options: string[]; flags: string[]; run: (a: ParsedArgs) => Promise<number> }> = {
	build: { options: ['kernel', 'config'], flags: [], run: cmdBuild },
	exec: { options: ['kernel', 'timeout', ...GUEST_OPTIONS], flags: ['keep-console'], run: cmdExec },
	shell: { options: ['kernel', ...GUEST_OPTIONS], flags: [], run: cmdShell },
	repro: { options: ['kernel', 'repeat', 'mode'], flags: [], run: cmdRepro },
	run: { options: ['kernel', 'filter', 'repeat', 'json', 'junit'], flags: [], run: cmdRun },
	bench: { options: ['kernel', 'repeat', 'only', 'json', 'compare', 'tolerance'], flags: [], run: cmdBench },
	'bench-compare': { options: ['tolerance'], flags: [], run: cmdBenchCompare },
	fuzz: { options: ['kernel', 'config', 'seed', 'minutes', 'json'], flags: [], run: cmdFuzz },
	'check-series': { options: ['from', 'to', 'json'], flags: ['no-build', 'no-boot'], run: cmdCheckSeries },
};

async function main(argv: string[]): Promise<number> {
	const name = argv[0] ?? 'help';
	if (name === 'help' || name === '--help' || name === '-h') {
		process.stdout.write(USAGE);
		return 0;
	}
	const cmd = COMMANDS[name];
	if (!cmd) {
		process.stderr.write(`larval: unknown command ${name}\n\n${USAGE}`);
		return 2;
	}
	return cmd.run(parseArgs(argv, cmd));
}

main(process.argv.slice(2)).then(
	(code) => process.exit(code),
	(e: unknown) => {
		if (e instanceof GuestDiedError) {
			process.stderr.write(`larval: ${e.message}\n--- last console lines ---\n${e.consoleTail}\n`);
			process.exit(255);
		}
		if (e instanceof LarvalError) {
			process.stderr.write(`larval: ${e.message}\n${e.detail ? `${e.detail}\n` : ''}`);
			process.exit(2);
		}
		process.stderr.write(`larval: internal error: ${(e as Error).stack ?? String(e)}\n`);
		process.exit(70);
	},
);
