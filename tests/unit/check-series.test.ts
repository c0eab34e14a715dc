import { describe, expect, it } from 'vitest';
import {
	checkpatchVerdict,
	COMPAT_CASES,
	compilerDiagnostics,
	parseCheckpatchTotals,
	prefixRange,
	type PrefixRow,
	renderFailures,
	renderSeriesTable,
	rowPassed,
	touchesKconfig,
} from '../../harness/kernel/check-series.js';
import { findCase } from '../../harness/suite/cases.js';

const CLEAN = `total: 0 errors, 0 warnings, 0 checks, 796 lines checked

kernel-patches/0002-x.patch has no obvious style problems and is ready for submission.
`;

const DIRTY = `WARNING: line length of 104 exceeds 100 columns
#57: FILE: net/xfrm/xfrm_policy.c:3210:
+	if (xfrm_resolve_wanted(net, flags) && very_long_condition_here(net, flags, xdst, policy, dst_orig)) {

CHECK: Alignment should match open parenthesis
#80: FILE: net/xfrm/xfrm_state.c:12:
+	foo(a,
+		b);

total: 0 errors, 1 warnings, 1 checks, 120 lines checked
`;

describe('checkpatch output', () => {
	it('reads the --strict summary line', () => {
		expect(parseCheckpatchTotals(CLEAN)).toEqual({ errors: 0, warnings: 0, checks: 0, lines: 796 });
		expect(parseCheckpatchTotals(DIRTY)).toEqual({ errors: 0, warnings: 1, checks: 1, lines: 120 });
	});
	it('reads the summary without --strict, and singular counts', () => {
		expect(parseCheckpatchTotals('total: 1 error, 0 warnings, 1 line checked\n')).toEqual({ errors: 1, warnings: 0, checks: 0, lines: 1 });
	});
	it('finds no summary in output that has none', () => {
		expect(parseCheckpatchTotals('Can\'t open perl script "scripts/checkpatch.pl"\n')).toBeNull();
	});
	it('passes a clean patch only', () => {
		expect(checkpatchVerdict(CLEAN, 0)).toEqual({ ok: true, totals: { errors: 0, warnings: 0, checks: 0, lines: 796 }, findings: [] });
		const dirty = checkpatchVerdict(DIRTY, 1);
		expect(dirty.ok).toBe(false);
		expect(dirty.findings).toEqual([
			'WARNING: line length of 104 exceeds 100 columns (FILE: net/xfrm/xfrm_policy.c:3210:)',
			'CHECK: Alignment should match open parenthesis (FILE: net/xfrm/xfrm_state.c:12:)',
		]);
	});
	it('fails a run without a summary, or one that exited non-zero', () => {
		expect(checkpatchVerdict('', 2).ok).toBe(false);
		expect(checkpatchVerdict(CLEAN, 1).ok).toBe(false);
	});
});

describe('prefix range', () => {
	it('is the whole series by default', () => {
		expect(prefixRange(10)).toEqual({ from: 1, to: 10 });
	});
	it('narrows with --from and --to, 1-based and inclusive', () => {
		expect(prefixRange(10, '9')).toEqual({ from: 9, to: 10 });
		expect(prefixRange(10, '3', '3')).toEqual({ from: 3, to: 3 });
		expect(prefixRange(10, undefined, '4')).toEqual({ from: 1, to: 4 });
	});
	it('rejects a range outside the series, reversed, or not a patch number', () => {
		expect(() => prefixRange(10, '11')).toThrow(/--from 11 is beyond the series: kernel-patches\/series has 10 patches/);
		expect(() => prefixRange(10, undefined, '12')).toThrow(/--to 12 is beyond/);
		expect(() => prefixRange(10, '5', '4')).toThrow(/--from 5 is after --to 4/);
		for (const bad of ['0', '-1', '2.5', 'x', '']) expect(() => prefixRange(10, bad)).toThrow(/--from must be a patch number, 1\.\.10/);
	});
	it('says so when there is no series', () => {
		expect(() => prefixRange(0)).toThrow(/missing or names no patches/);
	});
});

// A -j2 log from a run with a deliberately broken 0002, plus a linker error.
const BUILD_LOG = `  CC      net/ipv4/ip_sockglue.o
../src/net/xfrm/xfrm_policy.c: In function 'xfrm_policy_kill':
../src/net/xfrm/xfrm_policy.c:494:9: error: 'undeclared_symbol_xyz' undeclared (first use in this function)
  494 |         undeclared_symbol_xyz = 1;
      |         ^~~~~~~~~~~~~~~~~~~~~
../src/net/xfrm/xfrm_policy.c:494:9: note: each undeclared identifier is reported only once for each function it appears in
../src/net/xfrm/xfrm_policy.c: At top level:
../src/net/xfrm/xfrm_policy.c:3333:13: warning: 'xfrm_larval_policy_kill' defined but not used [-Wunused-function]
  CC      net/ipv4/xfrm4_policy.o
make[3]: *** [/root/.cache/larval/check-series/src/scripts/Makefile.build:229: net/xfrm/xfrm_policy.o] Error 1
ld: vmlinux.o: in function \`udp_sendmsg': undefined reference to \`xfrm_larval_wait'
`;

describe('build logs', () => {
	it("finds the compiler's and linker's errors and warnings, not make's echo of them", () => {
		expect(compilerDiagnostics(BUILD_LOG)).toEqual({
			errors: [
				"../src/net/xfrm/xfrm_policy.c:494:9: error: 'undeclared_symbol_xyz' undeclared (first use in this function)",
				"ld: vmlinux.o: in function `udp_sendmsg': undefined reference to `xfrm_larval_wait'",
			],
			warnings: ["../src/net/xfrm/xfrm_policy.c:3333:13: warning: 'xfrm_larval_policy_kill' defined but not used [-Wunused-function]"],
		});
	});
	it('finds nothing in a clean build', () => {
		expect(compilerDiagnostics('  CC      init/main.o\n  LD      vmlinux\nKernel: arch/x86/boot/bzImage is ready  (#2)\n')).toEqual({ errors: [], warnings: [] });
	});
});

describe('Kconfig changes', () => {
	it('notices a patch that changes a Kconfig file', () => {
		expect(touchesKconfig('--- a/net/xfrm/Kconfig\n+++ b/net/xfrm/Kconfig\n@@ -1 +1 @@\n')).toBe(true);
		expect(touchesKconfig('+++ b/arch/x86/Kconfig.debug\n')).toBe(true);
		expect(touchesKconfig('+++ b/net/xfrm/xfrm_policy.c\n+ * see Kconfig\n')).toBe(false);
	});
});

function row(n: number, over: Partial<PrefixRow> = {}): PrefixRow {
	return {
		n,
		patch: `000${n}-x.patch`,
		checkpatch: { status: 'ok', seconds: 3.21, totals: { errors: 0, warnings: 0, checks: 0, lines: 100 }, findings: [] },
		apply: { status: 'ok', seconds: 0.08 },
		build: { status: 'ok', seconds: 142.4 },
		buildNoIpv6: { status: 'ok', seconds: 95.1 },
		boot: { status: 'ok', seconds: 31.5, bootSeconds: 3.1, passed: 4, total: 4, cells: [] },
		...over,
	};
}

describe('the table', () => {
	it('passes a row whose steps are ok or skipped, and only those', () => {
		expect(rowPassed(row(1))).toBe(true);
		expect(rowPassed(row(1, { build: { status: 'skipped' }, boot: { status: 'skipped', passed: 0, total: 4, cells: [] } }))).toBe(true);
		expect(rowPassed(row(1, { build: { status: 'failed', seconds: 12, detail: 'error: x' } }))).toBe(false);
		expect(rowPassed(row(1, { buildNoIpv6: { status: 'failed', seconds: 12, detail: 'net/ipv4/ping.c:1: error: z' } }))).toBe(false);
		expect(rowPassed(row(1, { apply: { status: 'not reached' } }))).toBe(false);
	});

	it('renders one row per patch with each step and its time, and the failures below', () => {
		const rows = [
			row(1),
			row(2, {
				checkpatch: { status: 'failed', seconds: 2.9, totals: { errors: 0, warnings: 1, checks: 0, lines: 80 }, findings: ['WARNING: x'], detail: 'WARNING: x' },
				build: { status: 'failed', seconds: 45, detail: 'make exited with 2\nnet/xfrm/xfrm_policy.c:12: error: y', diagnostics: { errors: ['net/xfrm/xfrm_policy.c:12: error: y'], warnings: ['a: warning: b', 'c: warning: d'] } },
				buildNoIpv6: { status: 'failed', seconds: 40, detail: 'make exited with 2\nnet/ipv4/ping.c:9: error: z', diagnostics: { errors: ['net/ipv4/ping.c:9: error: z'], warnings: [] } },
				boot: { status: 'not reached', passed: 0, total: 4, cells: [] },
			}),
			row(3, { apply: { status: 'skipped' }, build: { status: 'skipped' }, buildNoIpv6: { status: 'skipped' }, boot: { status: 'failed', seconds: 20, bootSeconds: 3.4, passed: 3, total: 4, cells: [], detail: 'udp-datagrams-lost: 3/3 echoed' } }),
		];
		const table = renderSeriesTable(rows).split('\n');
		expect(table[0]).toMatch(/^\| # \| patch +\| checkpatch \(netdev\) +\| applies +\| build +\| build IPv6=n +\| boot \+ compat +\|$/);
		expect(table).toHaveLength(5);
		expect(table[2]).toMatch(/^\| 1 \| 0001-x\.patch \| ok \(0 errors, 0 warnings, 0 checks\) 3\.2 s +\| yes 0\.08 s \| ok 142 s +\| ok 95 s +\| ok 4\/4 \(boot 3\.1 s, total 32 s\) +\|$/);
		expect(table[3]).toMatch(/FAIL \(0 errors, 1 warnings, 0 checks\) 2\.9 s .*\| FAIL 45 s \(1 error, 2 warnings\) \| FAIL 40 s \(1 error\) \| not reached/);
		expect(table[4]).toMatch(/\| skipped +\| skipped +\| skipped +\| FAIL 3\/4 \(boot 3\.4 s, total 20 s\)/);
		expect(renderFailures(rows).split('\n')).toEqual([
			'0002-x.patch: checkpatch failed',
			'    WARNING: x',
			'0002-x.patch: build failed',
			'    make exited with 2',
			'    net/xfrm/xfrm_policy.c:12: error: y',
			'0002-x.patch: build IPv6=n failed',
			'    make exited with 2',
			'    net/ipv4/ping.c:9: error: z',
			'0003-x.patch: boot + compat failed',
			'    udp-datagrams-lost: 3/3 echoed',
		]);
		expect(renderFailures([row(1)])).toBe('');
	});
});

describe('compatibility rows', () => {
	it('names cases that exist and have a stock larval_drop=1 expectation', () => {
		for (const id of COMPAT_CASES) expect(findCase(id)?.stock['larval_drop=1'], id).toBeTypeOf('function');
	});
});
