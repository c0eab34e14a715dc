#!/usr/bin/env node
import { parseArgs, positiveNumber, single, type ParsedArgs } from './cli-args.js';
import { buildKernel } from './kernel/build.js';
import { fetchDistroKernel } from './kernel/distro.js';
import { resolveKernel } from './kernel/target.js';
import { LarvalError } from './util/errors.js';
import { shellJoin } from './util/shell.js';
import { bootGuest } from './vm/guest.js';
import { GuestDiedError } from './vm/vm.js';
import { ExecTimeoutError } from './vm/ssh.js';
import { formatFindings } from './vm/console-scan.js';

const USAGE = `usage: larval COMMAND [OPTIONS]

  build [--kernel stock|patched|distro|all] [--config FLAVOUR]
      Build kernels from Debian's linux-source-6.12 (patched: with
      kernel-patches/series); distro fetches Debian's cloud kernel.
  exec [--kernel K] [--timeout S] [--keep-console] -- CMD ARGS...
      Boot K, run CMD in the guest, print its output, exit with its status
      (255 when the guest died, 124 on timeout).
  shell [--kernel K]
      An interactive shell in a booted guest.

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

async function cmdExec(args: ParsedArgs): Promise<number> {
	if (!args.rest.length) throw new LarvalError('larval exec needs a command after --');
	const timeoutMs = positiveNumber(single(args, 'timeout', '60'), '--timeout') * 1000;
	const kernel = await resolveKernel(single(args, 'kernel', 'patched'));
	const { vm, accel } = await bootGuest(kernel);
	let failed = false;
	try {
		const r = await vm.exec(shellJoin(args.rest), {
			timeoutMs,
			onStdout: (d) => process.stdout.write(d),
			onStderr: (d) => process.stderr.write(d),
		});
		process.stderr.write(`[larval] ${kernel.name} ${kernel.release}, ${accel.accel}, boot ${(vm.bootMs / 1000).toFixed(2)} s, command ${(r.durationMs / 1000).toFixed(2)} s, status ${r.code ?? r.signal}\n`);
		return r.code ?? 255;
	} catch (e) {
		failed = true;
		if (e instanceof ExecTimeoutError) {
			process.stderr.write(`larval: ${e.message}; the VM was killed\n`);
			return 124;
		}
		throw e;
	} finally {
		const { consoleLog, findings } = await vm.stop({ failed, keepConsole: args.flags.has('keep-console') });
		if (findings.length) process.stderr.write(`larval: the console shows kernel trouble:\n${formatFindings(findings)}\n`);
		if (consoleLog) process.stderr.write(`larval: console log: ${consoleLog}\n`);
	}
}

async function cmdShell(args: ParsedArgs): Promise<number> {
	const kernel = await resolveKernel(single(args, 'kernel', 'patched'));
	const { vm } = await bootGuest(kernel);
	try {
		return await vm.shell(process.stdin, process.stdout);
	} finally {
		await vm.stop();
	}
}

const COMMANDS: Record<string, { options: string[]; flags: string[]; run: (a: ParsedArgs) => Promise<number> }> = {
	build: { options: ['kernel', 'config'], flags: [], run: cmdBuild },
	exec: { options: ['kernel', 'timeout'], flags: ['keep-console'], run: cmdExec },
	shell: { options: ['kernel'], flags: [], run: cmdShell },
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
