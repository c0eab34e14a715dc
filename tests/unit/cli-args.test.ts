import { describe, expect, it } from 'vitest';
import { type ArgsSpec, parseArgs, positiveNumber, single, wholeNumber } from '../../harness/cli-args.js';
import { UsageError } from '../../harness/util/errors.js';

const exec: ArgsSpec = { options: { kernel: { type: 'string' }, timeout: { type: 'string' }, 'keep-console': { type: 'boolean' }, with: { type: 'string', multiple: true } }, rest: true };
const run: ArgsSpec = { options: { kernel: { type: 'string', multiple: true }, repeat: { type: 'string' } } };
const compare: ArgsSpec = { options: { tolerance: { type: 'string' } }, positionals: 2 };

/** The UsageError's message, or a failure when parsing did not throw one. */
function refusal(argv: string[], spec: ArgsSpec): string {
	try {
		parseArgs(argv, spec);
	} catch (e) {
		expect(e).toBeInstanceOf(UsageError);
		expect((e as Error).message).not.toMatch(/\n/);
		return (e as Error).message;
	}
	throw new Error(`accepted ${argv.join(' ')}`);
}

describe('CLI argument parsing', () => {
	it('separates options, flags and the guest command after --, which keeps its own options', () => {
		const a = parseArgs(['--kernel', 'stock', '--timeout=5', '--keep-console', '--', 'ls', '--kernel', '-h'], exec);
		expect(single(a, 'kernel')).toBe('stock');
		expect(single(a, 'timeout')).toBe('5');
		expect(a.flags.has('keep-console')).toBe(true);
		expect(a.rest).toEqual(['ls', '--kernel', '-h']);
		expect(a.help).toBe(false);
	});

	it('keeps repeated options in order where the command takes several, and refuses a second one elsewhere', () => {
		expect(parseArgs(['--kernel', 'distro', '--kernel', 'stock'], run).options.get('kernel')).toEqual(['distro', 'stock']);
		expect(parseArgs(['--with', 'ping', '--with=ss'], exec).options.get('with')).toEqual(['ping', 'ss']);
		expect(refusal(['--kernel', 'stock', '--kernel', 'patched'], exec)).toBe('--kernel given more than once ("stock", "patched")');
	});

	it('rejects unknown options, listing the valid ones', () => {
		expect(refusal(['--kernal', 'x'], exec)).toBe('unknown option --kernal (options: --kernel --timeout --keep-console --with)');
		expect(refusal(['-k', 'x'], exec)).toMatch(/^unknown option -k /);
	});

	it('never takes the next option, or --, as a missing value', () => {
		expect(refusal(['--kernel'], exec)).toBe('--kernel needs a value');
		expect(refusal(['--timeout', '--', 'true'], exec)).toBe('--timeout needs a value, not "--" (a value starting with - goes as --timeout=--)');
		expect(refusal(['--kernel', '--timeout', '5'], exec)).toMatch(/^--kernel needs a value, not "--timeout"/);
		expect(single(parseArgs(['--tolerance=-5', 'a', 'b'], compare), 'tolerance')).toBe('-5');
	});

	it('refuses a value on a flag', () => {
		expect(refusal(['--keep-console=yes', '--', 'true'], exec)).toBe('--keep-console takes no value, not "yes"');
	});

	it('takes positionals only where the command has them, the guest command only after --', () => {
		expect(parseArgs(['a.json', 'b.json', '--tolerance', '10'], compare).positional).toEqual(['a.json', 'b.json']);
		expect(parseArgs(['--', '-a.json', 'b.json'], compare).positional).toEqual(['-a.json', 'b.json']);
		expect(refusal(['a', 'b', 'c'], compare)).toBe('unexpected argument "c"');
		expect(refusal(['stock'], run)).toBe('unexpected argument "stock"');
		expect(refusal(['uname', '-a'], exec)).toBe('the guest command goes after --: unexpected "uname"');
	});

	it('answers --help and -h before any other complaint, but not after --', () => {
		expect(parseArgs(['--help'], exec).help).toBe(true);
		expect(parseArgs(['--kernal', 'x', '-h'], exec).help).toBe(true);
		expect(parseArgs(['--', 'ls', '--help'], exec).help).toBe(false);
	});

	it('checks numbers, naming the value', () => {
		expect(positiveNumber('2.5', '--timeout')).toBe(2.5);
		expect(() => positiveNumber('-1', '--timeout')).toThrow('--timeout must be a positive number, not "-1"');
		expect(() => positiveNumber('abc', '--timeout')).toThrow(UsageError);
		expect(() => positiveNumber('', '--timeout')).toThrow(UsageError);
		expect(wholeNumber('3', '--repeat')).toBe(3);
		for (const bad of ['three', '0', '2.5', '-1', '1e3', '']) expect(() => wholeNumber(bad, '--repeat')).toThrow(`--repeat must be a whole number of at least 1, not "${bad}"`);
		expect(() => wholeNumber('32', '--memory (MiB)', { min: 64, max: 16384 })).toThrow('--memory (MiB) must be a whole number from 64 to 16384, not "32"');
	});
});
