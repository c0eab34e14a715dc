import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { positiveCount } from '../../harness/util/count.js';
import { firewallRowRepeat, patchedCompatRowRuns, repeatFor } from '../vm/repeat.js';

describe('counts', () => {
	it('take whole numbers from 1, and nothing else', () => {
		expect(positiveCount('3', 'n')).toBe(3);
		expect(positiveCount(1, 'n')).toBe(1);
		for (const bad of ['0', '', ' ', '-1', '1.5', '2x', '1e3', 'NaN', 0, -2, 2.5, Number.NaN]) expect(() => positiveCount(bad, 'n'), String(bad)).toThrow(/n must be a whole number from 1/);
	});

	it('LARVAL_REPEAT=0, empty or junk fails the suites instead of running nothing', () => {
		expect(repeatFor('patched', {})).toBe(1);
		expect(repeatFor('patched', { LARVAL_TIER: 'full' })).toBe(3);
		expect(() => repeatFor('patched', { LARVAL_TIER: 'most' })).toThrow(/LARVAL_TIER must be ci or full/);
		expect(repeatFor('distro', { LARVAL_REPEAT: '5' })).toBe(5);
		for (const v of ['0', '', 'three']) expect(() => repeatFor('patched', { LARVAL_REPEAT: v }), v).toThrow(/LARVAL_REPEAT/);
	});

	it('runs each firewall row in ci where it tells something, every row in full, and every other row as asked', () => {
		const fw = { firewall: 'stateful' };
		expect(firewallRowRepeat(fw, 'xfrm_resolve=1', 'patched', 2, {})).toBe(1);
		expect(firewallRowRepeat(fw, 'larval_drop=0', 'patched', 1, {})).toBe(0);
		expect(firewallRowRepeat(fw, 'larval_drop=0', 'stock', 1, {})).toBe(1);
		expect(firewallRowRepeat(fw, 'larval_drop=1', 'stock', 1, {})).toBe(0);
		expect(firewallRowRepeat(fw, 'larval_drop=1', 'stock', 2, { LARVAL_TIER: 'full' })).toBe(2);
		expect(firewallRowRepeat({}, 'larval_drop=1', 'stock', 2, {})).toBe(2);
		expect(patchedCompatRowRuns('larval_drop=1', {})).toBe(true);
		expect(patchedCompatRowRuns('larval_drop=0', {})).toBe(false);
		expect(patchedCompatRowRuns('larval_drop=0', { LARVAL_TIER: 'full' })).toBe(true);
	});
});

/**
 * The VM suites' setup file (tests/vm/guard.ts) run for real by vitest on
 * two throwaway test files that boot no guest: the one that does not say
 * why fails, the one that calls bootsNoGuest() passes.
 */
describe('a VM test file that boots no guest', () => {
	const root = resolve(import.meta.dirname, '../..');
	let dir = '';
	afterAll(() => rmSync(dir, { recursive: true, force: true }));

	it('fails, unless it says why it needs none', async () => {
		// Under results/ (ignored by git), so that the throwaway files resolve vitest from this repository.
		mkdirSync(join(root, 'results'), { recursive: true });
		dir = mkdtempSync(join(root, 'results', 'guard-selftest-'));
		writeFileSync(join(dir, 'silent.test.ts'), "import { expect, it } from 'vitest';\nit('asserts nothing about a guest', () => expect(1).toBe(1));\n");
		writeFileSync(join(dir, 'declared.test.ts'), `import { expect, it } from 'vitest';\nimport { bootsNoGuest } from '${join(root, 'tests/vm/guard.ts')}';\nbootsNoGuest('a probe of the guard');\nit('boots none, on purpose', () => expect(1).toBe(1));\n`);
		writeFileSync(join(dir, 'vitest.config.mjs'), `export default { test: { root: ${JSON.stringify(dir)}, include: ['*.test.ts'], setupFiles: [${JSON.stringify(join(root, 'tests/vm/guard.ts'))}] } };\n`);
		const report = join(dir, 'report.json');
		const r = await execa('npx', ['vitest', 'run', '--config', join(dir, 'vitest.config.mjs'), '--reporter=json', `--outputFile.json=${report}`], { cwd: root, reject: false });
		expect(r.exitCode, r.stdout + r.stderr).toBe(1);
		const json = JSON.parse(readFileSync(report, 'utf8')) as { testResults: Array<{ name: string; status: string; message: string }> };
		const byFile = Object.fromEntries(json.testResults.map((t) => [t.name.split('/').at(-1)!, t]));
		expect(byFile['silent.test.ts']!.status).toBe('failed');
		expect(byFile['silent.test.ts']!.message).toMatch(/booted no guest/);
		expect(byFile['declared.test.ts']!.status).toBe('passed');
	}, 60_000);
});
