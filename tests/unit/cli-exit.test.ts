import { describe, expect, it } from 'vitest';
import { commandExitCode, commandStatusText, errorReport, EXIT, signalNumber } from '../../harness/cli-exit.js';
import { LarvalError, UsageError } from '../../harness/util/errors.js';
import { GuestDiedError } from '../../harness/vm/vm.js';

describe('exit statuses', () => {
	it("passes the guest command's status through, and 128+N for a command killed by signal N", () => {
		expect(commandExitCode({ code: 0, signal: null })).toBe(0);
		expect(commandExitCode({ code: 7, signal: null })).toBe(7);
		// ssh's exit-signal names the signal without SIG.
		expect(commandExitCode({ code: null, signal: 'KILL' })).toBe(137);
		expect(commandExitCode({ code: null, signal: 'TERM' })).toBe(143);
		expect(commandExitCode({ code: null, signal: 'SIGSEGV' })).toBe(139);
		expect(commandExitCode({ code: null, signal: 'NOSUCH' })).toBe(EXIT.failed);
		expect(signalNumber('INT')).toBe(2);
		expect(commandStatusText({ code: null, signal: 'KILL' })).toBe('killed by SIGKILL (137)');
		expect(commandStatusText({ code: 3, signal: null })).toBe('3');
	});

	it('exits 2 for usage errors only, in one line that points at --help', () => {
		const r = errorReport(new UsageError('--cpus must be a whole number of vCPUs from 1 to 8, not "9"'), 'exec', false);
		expect(r.code).toBe(2);
		expect(r.text).toBe('larval exec: --cpus must be a whole number of vCPUs from 1 to 8, not "9"; see larval exec --help\n');
		expect(errorReport(new UsageError('unknown command "frob"'), undefined, false).text).toBe('larval: unknown command "frob"; see larval --help\n');
	});

	it('exits 1 for a harness failure, with its detail; a guest that never booted is one', () => {
		const r = errorReport(new LarvalError('kernel x: a directory without arch/x86/boot/bzImage (not built yet?)'), 'exec', false);
		expect(r).toEqual({ code: 1, text: 'larval exec: kernel x: a directory without arch/x86/boot/bzImage (not built yet?)\n' });
		const died = errorReport(new GuestDiedError('stock: guest did not finish booting within 90000 ms', 'tail line', '/tmp/c.log'), 'run', false);
		expect(died.code).toBe(1);
		expect(died.text).toBe('larval run: stock: guest did not finish booting within 90000 ms\ntail line\n');
	});

	it('keeps the stack of an internal error behind LARVAL_DEBUG=1', () => {
		const quiet = errorReport(new TypeError('x is undefined'), 'bench', false);
		expect(quiet).toEqual({ code: 1, text: 'larval bench: internal error: x is undefined\n(LARVAL_DEBUG=1 shows where)\n' });
		const loud = errorReport(new TypeError('x is undefined'), 'bench', true);
		expect(loud.text).toMatch(/^larval bench: internal error: x is undefined\nTypeError: x is undefined\n\s+at /);
	});
});
