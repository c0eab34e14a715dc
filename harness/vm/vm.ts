import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import type ssh2 from 'ssh2';
import { LarvalError } from '../util/errors.js';
import { resultsRoot } from '../util/paths.js';
import { type ConsoleFinding, consoleTail, scanConsole } from './console-scan.js';
import { type Accelerator, ownedCommand, qemuArgs } from './qemu-args.js';
import { registerVmProcess, unregisterVmProcess } from './reaper.js';
import { runId } from './run-id.js';
import { connect, ConnectionLostError, exec, type ExecOptions, type ExecResult } from './ssh.js';

export const QEMU = process.env.LARVAL_QEMU ?? 'qemu-system-x86_64';
const CONSOLE_TAIL_LINES = 50;
const LONG_COMMAND = 4096;

export interface BootOptions {
	/** Short name for log files and messages, e.g. "stock". */
	name: string;
	bzImage: string;
	initrd: string;
	clientPrivateKey: string;
	hostPublicKey: string;
	accel: Accelerator;
	memoryMiB?: number;
	cpus?: number;
	append?: readonly string[];
	acpiPciIrqs?: boolean;
	/** QEMU's instruction counter (QemuConfig.icount). */
	icount?: boolean;
	/** From QEMU's start to a working ssh session. */
	bootTimeoutMs?: number;
}

/** The guest is gone (panic, reboot, QEMU error) or never came up. */
export class GuestDiedError extends LarvalError {
	constructor(message: string, readonly consoleTail: string, readonly consoleLog: string) {
		super(message, consoleTail);
		this.name = 'GuestDiedError';
	}
}

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const s = createServer();
		s.unref();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const addr = s.address();
			s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
		});
	});
}

let vmCounter = 0;

/**
 * One QEMU guest: booted, reachable over ssh, its serial console captured to
 * a file and scanned for kernel trouble.  Always end it with stop().
 */
export class Vm {
	/** QEMU start to a working ssh session. */
	bootMs = 0;
	/** QEMU start to the guest's "ready" line on the console (sshd started). */
	guestReadyMs = 0;
	private consoleText = '';
	private stderrText = '';
	private exited = false;
	private exitInfo = '';
	private stopped = false;
	private failed = false;
	private client: ssh2.Client | undefined;
	private readonly consoleStream: WriteStream;

	private constructor(
		readonly opts: BootOptions,
		readonly sshPort: number,
		readonly consoleLog: string,
		private readonly qemu: ResultPromise,
	) {
		this.consoleStream = createWriteStream(consoleLog);
		this.consoleStream.write(`# ${qemu.spawnargs.join(' ')}\n`);
		qemu.stdout?.on('data', (d: Buffer) => {
			const s = d.toString();
			this.consoleStream.write(s);
			this.consoleText += s;
		});
		qemu.stderr?.on('data', (d: Buffer) => {
			this.stderrText += d.toString();
			this.consoleStream.write(`# qemu stderr: ${d.toString()}`);
		});
		void qemu.then((r) => {
			if (qemu.pid !== undefined) unregisterVmProcess(qemu.pid);
			this.exited = true;
			this.exitInfo =
				r.exitCode === undefined && !r.signal
					? (r.shortMessage ?? 'QEMU could not be started') // spawn failed: ENOENT and friends
					: `QEMU exited (${r.signal ?? `status ${r.exitCode}`})${this.stderrText ? `: ${this.stderrText.trim()}` : ''}`;
		});
	}

	get accel(): Accelerator {
		return this.opts.accel;
	}

	static async boot(opts: BootOptions): Promise<Vm> {
		const bootTimeoutMs = opts.bootTimeoutMs ?? (opts.accel === 'kvm' ? 30_000 : 90_000);
		const dir = join(resultsRoot(), 'consoles');
		mkdirSync(dir, { recursive: true });
		let lastError = '';
		// A port that another process grabs between our probe and QEMU's bind
		// makes QEMU exit at once; a few tries with fresh ports cover that race.
		for (let attempt = 0; attempt < 4; attempt++) {
			const consoleLog = join(dir, `${opts.name}-${process.pid}-${++vmCounter}.log`);
			const vm = Vm.start(opts, await freePort(), consoleLog);
			try {
				await vm.waitUntilReady(bootTimeoutMs);
				return vm;
			} catch (e) {
				if (e instanceof GuestDiedError && /host forwarding rule/.test(e.message)) {
					lastError = e.message;
					rmSync(e.consoleLog, { force: true });
					continue;
				}
				throw e;
			}
		}
		throw new LarvalError(`could not bind an ssh forward port: ${lastError}`);
	}

	private static start(opts: BootOptions, port: number, consoleLog: string): Vm {
		const args = qemuArgs({
			kernel: opts.bzImage,
			initrd: opts.initrd,
			accel: opts.accel,
			sshPort: port,
			memoryMiB: opts.memoryMiB,
			cpus: opts.cpus,
			append: opts.append,
			acpiPciIrqs: opts.acpiPciIrqs,
			icount: opts.icount,
			runId: runId(),
		});
		const [file, argv] = ownedCommand(QEMU, args);
		const qemu = execa(file, argv, { stdin: 'ignore', buffer: false, reject: false, cleanup: true });
		if (qemu.pid !== undefined) registerVmProcess(qemu.pid);
		return new Vm(opts, port, consoleLog, qemu);
	}

	private async waitUntilReady(bootTimeoutMs: number): Promise<void> {
		const started = performance.now();
		const deadline = started + bootTimeoutMs;
		const fail = async (why: string): Promise<never> => {
			this.failed = true;
			await this.kill();
			await new Promise((r) => this.consoleStream.end(r));
			// setpriv (ownedCommand) says so with status 127 when it cannot execute QEMU.
			if (this.qemu.pid === undefined || /setpriv: failed to execute/.test(this.stderrText)) {
				throw new LarvalError(`cannot run ${QEMU}: ${this.exitInfo} (install qemu-system-x86: \`make deps\`)`);
			}
			throw new GuestDiedError(`${this.opts.name}: ${why}; console: ${this.consoleLog}`, consoleTail(this.consoleText, CONSOLE_TAIL_LINES), this.consoleLog);
		};
		// Wait for the boot script's marker before trying ssh: each failed ssh
		// attempt under TCG costs the guest CPU time it needs to boot.
		while (!/larval-init: ready/.test(this.consoleText)) {
			if (this.exited) {
				await sleep(50);
				return fail(`guest died during boot: ${this.exitInfo}`);
			}
			if (performance.now() > deadline) return fail(`guest did not finish booting within ${bootTimeoutMs} ms`);
			await sleep(20);
		}
		this.guestReadyMs = performance.now() - started;
		let lastErr = '';
		while (!this.client) {
			if (this.exited) return fail(`guest died before ssh came up: ${this.exitInfo}`);
			const left = deadline - performance.now();
			if (left <= 0) return fail(`ssh to the guest did not come up within ${bootTimeoutMs} ms (${lastErr})`);
			try {
				this.client = await connect(
					{ port: this.sshPort, privateKey: this.opts.clientPrivateKey, hostPublicKey: this.opts.hostPublicKey },
					Math.min(left, 10_000),
				);
			} catch (e) {
				lastErr = (e as Error).message;
				await sleep(100);
			}
		}
		this.bootMs = performance.now() - started;
	}

	/** The console so far. */
	console(): string {
		return this.consoleText;
	}

	findings(): ConsoleFinding[] {
		return scanConsole(this.consoleText);
	}

	get alive(): boolean {
		return !this.exited;
	}

	private async guestDied(why: string): Promise<never> {
		this.failed = true;
		// Let QEMU's last console bytes and exit status arrive.
		await Promise.race([this.qemu, sleep(2000)]);
		throw new GuestDiedError(`${this.opts.name}: ${why}: ${this.exitInfo || 'guest stopped answering'}; console: ${this.consoleLog}`, consoleTail(this.consoleText, CONSOLE_TAIL_LINES), this.consoleLog);
	}

	/**
	 * Runs a shell command in the guest.  On timeout the VM is killed unless
	 * keepOnTimeout: a command stuck in the kernel leaves a guest not worth
	 * trusting for the next case.
	 */
	async exec(command: string, opts: Partial<ExecOptions> & { keepOnTimeout?: boolean } = {}): Promise<ExecResult> {
		if (this.exited) return this.guestDied('guest is not running');
		// dropbear refuses exec requests of about 10 KB and more by dropping the
		// connection; a long script travels on stdin into a file instead.
		const viaFile = command.length > LONG_COMMAND && opts.stdin === undefined;
		const wire = viaFile ? 'f=$(mktemp /tmp/larval-cmd.XXXXXX) && cat > "$f" && { sh "$f" </dev/null; st=$?; rm -f "$f"; exit $st; }' : command;
		try {
			return await exec(this.client!, wire, { timeoutMs: 60_000, ...opts, ...(viaFile ? { stdin: command } : {}) });
		} catch (e) {
			if (e instanceof ConnectionLostError || this.exited) return this.guestDied(`lost the guest while running \`${command}\``);
			if (!opts.keepOnTimeout) {
				this.failed = true;
				await this.kill();
			}
			throw e;
		}
	}

	/** Like exec, but a non-zero status is an error carrying stderr. */
	async run(command: string, opts: Partial<ExecOptions> = {}): Promise<string> {
		const r = await this.exec(command, opts);
		if (r.code !== 0) {
			throw new LarvalError(`guest command failed (status ${r.code ?? r.signal}): ${command}`, `${r.stdout}${r.stderr}`.trim());
		}
		return r.stdout;
	}

	/** An interactive shell on the caller's terminal. */
	shell(stdin: NodeJS.ReadStream, stdout: NodeJS.WriteStream): Promise<number> {
		return new Promise((resolve, reject) => {
			this.client!.shell({ term: process.env.TERM ?? 'xterm', rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 }, (err, stream) => {
				if (err) return reject(err);
				const raw = stdin.isTTY;
				if (raw) stdin.setRawMode(true);
				stdin.pipe(stream);
				stream.pipe(stdout);
				stream.stderr.pipe(process.stderr);
				const onResize = () => stream.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
				stdout.on('resize', onResize);
				let code = 0;
				stream.on('exit', (c: number | null) => (code = c ?? 255));
				stream.on('close', () => {
					stdout.off('resize', onResize);
					stdin.unpipe(stream);
					if (raw) stdin.setRawMode(false);
					stdin.pause();
					resolve(code);
				});
			});
		});
	}

	private async kill(): Promise<void> {
		if (!this.exited) this.qemu.kill('SIGKILL');
		await Promise.race([this.qemu, sleep(5000)]);
	}

	/**
	 * Ends the guest.  The console log is kept when the run failed, the guest
	 * died, the console shows kernel trouble, or keepConsole is set; otherwise
	 * it is removed so that results/ holds only what needs reading.
	 */
	async stop(opts: { failed?: boolean; keepConsole?: boolean } = {}): Promise<{ consoleLog: string | null; findings: ConsoleFinding[] }> {
		if (this.stopped) return { consoleLog: this.consoleLog, findings: this.findings() };
		this.stopped = true;
		this.client?.end();
		await this.kill();
		await new Promise((r) => this.consoleStream.end(r));
		const findings = this.findings();
		const keep = opts.keepConsole || opts.failed || this.failed || findings.length > 0 || process.env.LARVAL_KEEP_CONSOLE === '1';
		if (!keep) {
			rmSync(this.consoleLog, { force: true });
			return { consoleLog: null, findings };
		}
		return { consoleLog: this.consoleLog, findings };
	}
}
