import { describe, expect, it } from 'vitest';
import { cacheInfixOf } from '../../harness/kernel/build.js';
import { DEFAULT_LINE, defaultLine, KERNEL_NAMES, LINES, parseKernelName } from '../../harness/kernel/line.js';
import { checkKernelSpec } from '../../harness/kernel/target.js';
import { DISTRO_MODULES } from '../../harness/kernel/distro.js';
import { UsageError } from '../../harness/util/errors.js';

describe('kernel lines', () => {
	it('reads a bare name as the default line, a suffixed one as its line', () => {
		expect(parseKernelName('patched')).toEqual({ kind: 'patched', line: LINES[DEFAULT_LINE] });
		expect(parseKernelName('stock-7.3')).toEqual({ kind: 'stock', line: LINES['7.3'] });
		expect(parseKernelName('distro-6.12')).toEqual({ kind: 'distro', line: LINES['6.12'] });
		expect(parseKernelName('/tmp/bzImage')).toBeUndefined();
	});
	it('takes the line of bare names from LARVAL_LINE, and refuses an unknown one', () => {
		expect(defaultLine({})).toBe(LINES[DEFAULT_LINE]);
		expect(defaultLine({ LARVAL_LINE: '7.3' })).toBe(LINES['7.3']);
		expect(() => defaultLine({ LARVAL_LINE: 'next' })).toThrow('LARVAL_LINE=next: unknown kernel line "next": the lines are 7.3, 6.12');
	});
	it('names the lines that exist for an unknown one', () => {
		expect(() => parseKernelName('stock-5.10')).toThrow(UsageError);
		expect(() => defaultLine({ LARVAL_LINE: 'constructor' })).toThrow(UsageError);
		expect(() => parseKernelName('stock-5.10')).toThrow('unknown kernel line "5.10": the lines are 7.3, 6.12');
		expect(() => checkKernelSpec('patched-9.9')).toThrow(/the lines are 7\.3, 6\.12/);
	});
	it('lists every name a user may give', () => {
		expect(KERNEL_NAMES).toEqual(['distro', 'stock', 'patched', 'distro-7.3', 'stock-7.3', 'patched-7.3', 'distro-6.12', 'stock-6.12', 'patched-6.12']);
		for (const n of KERNEL_NAMES) expect(() => checkKernelSpec(n)).not.toThrow();
	});
	it("keeps each line's series and source apart", () => {
		expect(LINES['7.3'].seriesDir).toMatch(/kernel-patches\/mainline-7\.3$/);
		expect(LINES['6.12'].seriesDir).toMatch(/kernel-patches$/);
		expect(LINES['7.3'].tarball).toBe('/usr/src/linux-source-7.3.tar.xz');
	});
	it("tells a line's cache directories from the other's, 6.12's keeping the names they had before lines", () => {
		expect(cacheInfixOf('base-7848044f49c349be', 'base')).toBe('');
		expect(cacheInfixOf('base-7.3-7848044f49c349be', 'base')).toBe('7.3-');
		expect(cacheInfixOf('debug-7.3-5a28cd5db24276ed', 'debug')).toBe('7.3-');
		expect(LINES['6.12'].cacheInfix).toBe('');
	});
	it('names as gone only modules the harness would otherwise load', () => {
		for (const line of Object.values(LINES)) for (const m of line.distroModulesGone) expect(DISTRO_MODULES).toContain(m);
	});
});
