import { describe, expect, it } from 'vitest';
import { parseArgs, positiveNumber, single } from '../../harness/cli-args.js';

const spec = { options: ['kernel', 'timeout'], flags: ['keep-console'] };

describe('CLI argument parsing', () => {
	it('separates options, flags and the command after --', () => {
		const a = parseArgs(['exec', '--kernel', 'stock', '--timeout=5', '--keep-console', '--', 'ls', '--kernel'], spec);
		expect(a.command).toBe('exec');
		expect(single(a, 'kernel', 'patched')).toBe('stock');
		expect(single(a, 'timeout', '60')).toBe('5');
		expect(a.flags.has('keep-console')).toBe(true);
		expect(a.rest).toEqual(['ls', '--kernel']);
	});
	it('keeps repeated options in order', () => {
		const a = parseArgs(['run', '--kernel', 'distro', '--kernel', 'stock'], spec);
		expect(a.options.get('kernel')).toEqual(['distro', 'stock']);
		expect(() => single(a, 'kernel', 'x')).toThrow(/more than once/);
	});
	it('rejects unknown options and missing values with the valid ones listed', () => {
		expect(() => parseArgs(['exec', '--kernal', 'x'], spec)).toThrow(/unknown option --kernal.*--kernel/);
		expect(() => parseArgs(['exec', '--kernel'], spec)).toThrow(/needs a value/);
	});
	it('checks numbers', () => {
		expect(positiveNumber('2.5', 't')).toBe(2.5);
		expect(() => positiveNumber('-1', '--timeout')).toThrow(/--timeout/);
		expect(() => positiveNumber('abc', '--timeout')).toThrow(/--timeout/);
	});
});
