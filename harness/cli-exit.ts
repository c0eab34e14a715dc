import { constants } from 'node:os';
import { LarvalError, UsageError } from './util/errors.js';

/** larval's exit statuses, as the usage text and the README's CLI section document them. */
export const EXIT = {
	ok: 0,
	/** A check failed (a cell, a gated figure, a prefix, the fuzzer), or the harness did (a missing bzImage, a guest that never booted). */
	failed: 1,
	/** A bad option, value or argument, on the command line or in a LARVAL_* variable. */
	usage: 2,
	/** exec: the guest command ran past --timeout (the VM was killed), as timeout(1) says it. */
	timeout: 124,
	/** exec: the guest command was killed by signal N: 128 + N, as a shell says it. */
	signalBase: 128,
	/** exec: the guest kernel died under the command. */
	guestDied: 255,
} as const;

/** Linux's number for a signal named as ssh names it ("KILL") or as the host does ("SIGKILL"); the guest's numbers are the host's (x86-64 both). */
export function signalNumber(name: string): number | null {
	const signals = constants.signals as Readonly<Record<string, number | undefined>>;
	return signals[name.startsWith('SIG') ? name : `SIG${name}`] ?? null;
}

/** The guest command's status as a shell gives it: its exit code, or 128 + the number of the signal that killed it. */
export function commandExitCode(r: { code: number | null; signal: string | null }): number {
	if (r.code !== null) return r.code;
	const n = r.signal === null ? null : signalNumber(r.signal);
	return n === null ? EXIT.failed : EXIT.signalBase + n;
}

/** For the closing line of `larval exec`: "0", or "killed by SIGKILL (137)". */
export function commandStatusText(r: { code: number | null; signal: string | null }): string {
	if (r.code !== null) return String(r.code);
	return `killed by SIG${(r.signal ?? '?').replace(/^SIG/, '')} (${commandExitCode(r)})`;
}

/**
 * What the CLI prints for an error a command threw, and its exit status: a
 * usage error is one line naming what was wrong; a harness failure its
 * message and detail (a log or console tail); anything else is a bug in
 * the harness, one line unless LARVAL_DEBUG=1 asks for its stack.
 */
export function errorReport(e: unknown, command: string | undefined, debug: boolean): { code: number; text: string } {
	const who = command ? `larval ${command}` : 'larval';
	const stack = (x: Error) => (debug && x.stack ? `${x.stack}\n` : '');
	if (e instanceof UsageError) return { code: EXIT.usage, text: `${who}: ${e.message}; see larval ${command ? `${command} ` : ''}--help\n${stack(e)}` };
	if (e instanceof LarvalError) return { code: EXIT.failed, text: `${who}: ${e.message}\n${e.detail ? `${e.detail}\n` : ''}${stack(e)}` };
	const err = e instanceof Error ? e : new Error(String(e));
	return { code: EXIT.failed, text: `${who}: internal error: ${err.message}\n${debug ? stack(err) : '(LARVAL_DEBUG=1 shows where)\n'}` };
}
