import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';

export interface SshTarget {
	port: number;
	privateKey: string;
	/** `ssh-ed25519 AAAA...`: the guest must present exactly this key. */
	hostPublicKey: string;
}

export interface ExecResult {
	stdout: string;
	stderr: string;
	/** Exit status, or null when the command died of a signal. */
	code: number | null;
	signal: string | null;
	durationMs: number;
}

function hostKeyMatches(expected: string) {
	const blob = Buffer.from(expected.split(' ')[1] ?? '', 'base64');
	return (key: Buffer) => key.equals(blob);
}

/** One ssh connection attempt, bounded by readyTimeoutMs. */
export function connect(t: SshTarget, readyTimeoutMs: number): Promise<ssh2.Client> {
	return new Promise((resolve, reject) => {
		const c = new ssh2.Client();
		const fail = (e: Error) => {
			c.end();
			reject(e);
		};
		c.once('ready', () => {
			c.removeListener('error', fail);
			// A dropped connection after ready surfaces through the exec in flight.
			c.on('error', () => undefined);
			resolve(c);
		});
		c.once('error', fail);
		c.connect({
			host: '127.0.0.1',
			port: t.port,
			username: 'root',
			privateKey: t.privateKey,
			hostVerifier: hostKeyMatches(t.hostPublicKey),
			readyTimeout: readyTimeoutMs,
			keepaliveInterval: 0,
		});
	});
}

export interface ExecOptions {
	timeoutMs: number;
	stdin?: string | Buffer;
	/** Stream output as it comes, for `larval exec`. */
	onStdout?: (chunk: Buffer) => void;
	onStderr?: (chunk: Buffer) => void;
}

export class ExecTimeoutError extends Error {
	constructor(readonly command: string, readonly timeoutMs: number, readonly partial: Omit<ExecResult, 'code' | 'signal'>) {
		super(`command timed out after ${timeoutMs} ms: ${command}`);
		this.name = 'ExecTimeoutError';
	}
}

export class ConnectionLostError extends Error {
	constructor(readonly command: string) {
		super(`ssh connection lost while running: ${command}`);
		this.name = 'ConnectionLostError';
	}
}

export function exec(client: ssh2.Client, command: string, opts: ExecOptions): Promise<ExecResult> {
	const started = performance.now();
	return new Promise((resolve, reject) => {
		const out: Buffer[] = [];
		const err: Buffer[] = [];
		let code: number | null = null;
		let signal: string | null = null;
		let settled = false;
		const partial = () => ({
			stdout: Buffer.concat(out).toString(),
			stderr: Buffer.concat(err).toString(),
			durationMs: performance.now() - started,
		});
		const settle = (f: () => void) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			client.removeListener('close', onClose);
			f();
		};
		const onClose = () => settle(() => reject(new ConnectionLostError(command)));
		const timer = setTimeout(() => settle(() => reject(new ExecTimeoutError(command, opts.timeoutMs, partial()))), opts.timeoutMs);
		client.once('close', onClose);
		client.exec(command, (e: Error | undefined, stream: ClientChannel) => {
			if (e) return settle(() => reject(e));
			stream.on('data', (d: Buffer) => {
				out.push(d);
				opts.onStdout?.(d);
			});
			stream.stderr.on('data', (d: Buffer) => {
				err.push(d);
				opts.onStderr?.(d);
			});
			stream.on('exit', (c: number | null, s?: string) => {
				code = c ?? null;
				signal = s ?? null;
			});
			stream.on('close', () => settle(() => resolve({ ...partial(), code, signal })));
			if (opts.stdin !== undefined) stream.end(opts.stdin);
			else stream.end();
		});
	});
}
