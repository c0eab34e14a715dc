import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderKtap } from '../../harness/report/ktap.js';
import { renderJunit } from '../../harness/report/table.js';
import type { CellResult } from '../../harness/suite/session.js';
import type { Outcome } from '../../harness/suite/outcome.js';

/** What a guest's console and a probe can hand the writers: ESC sequences, NUL, bytes that are not UTF-8, half a character. */
const NASTY = `\u001b[31mred\u001b[0m nul\u0000 bad-utf8:${Buffer.from([0xff, 0xfe, 0xc3]).toString('utf8')} half:\ud83d <tag> & "quotes"`;

const outcome = (o: Partial<Outcome>): Outcome => ({
	sockopts: [], sends: [], sent: 3, received: 0, lost: 3, firstReplyMs: null, rttMs: [], acquires: 1, installs: 2, clearAtPeer: 0,
	nearCounters: {}, installAtMs: 51, kmLog: [], lostIds: [1, 2, 3], complete: true, problems: [], ...o,
});

const cell = (over: Partial<CellResult>): CellResult => ({
	kernel: 'stock', release: '6.12.117', accel: 'tcg', cpus: 2, preempt: { model: 'full', dynamic: false },
	caseId: 'udp-datagrams-lost', mode: 'larval_drop=1', outcomes: [outcome({})], violations: [[]], findings: [], ms: 4321, ...over,
});

const CELLS: CellResult[] = [
	cell({}),
	cell({ mode: 'larval_drop=0', violations: [[`3/3 echoed, expected all lost ${NASTY}`]] }),
	cell({ caseId: 'ping-lost', findings: [{ kind: 'warning', line: 412, text: `WARNING: CPU: 0 ${NASTY}`, report: `[  1.0] WARNING: CPU: 0\n[  1.1] ${NASTY}` }] }),
	cell({ kernel: 'patched', accel: '?', cpus: null, preempt: null, caseId: 'tcp-connect-blackhole', mode: 'xfrm_resolve=1', outcomes: [], violations: [], ms: 90_000, error: `patched: guest died during boot: ${NASTY}\nconsole tail ${NASTY}` }),
];

let dir = '';
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

/** xmllint (libxml2-utils, harness/setup/install-deps.sh): a strict XML parser, and XPath over what it parsed. */
async function xmllint(xml: string, ...args: string[]) {
	dir ||= mkdtempSync(join(tmpdir(), 'larval-report-'));
	const file = join(dir, 'run.xml');
	writeFileSync(file, xml);
	return execa('xmllint', [...args, file], { reject: false });
}
const xpath = async (xml: string, expr: string) => (await xmllint(xml, '--xpath', expr)).stdout.trim();

describe("larval run's JUnit", () => {
	it('is well-formed XML whatever the console and the probe held', async () => {
		const xml = renderJunit(CELLS);
		const r = await xmllint(xml, '--noout');
		expect(r.exitCode, r.stderr).toBe(0);
		expect(await xpath(xml, 'string(//testcase[@classname="stock"][2]/failure)')).toContain('\\x1b[31mred\\x1b[0m nul\\x00 bad-utf8:\ufffd\ufffd\ufffd half:\\ud83d <tag> & "quotes"');
	});

	it("is checked by a parser that refuses what the old writer let through (raw ESC, NUL)", async () => {
		const r = await xmllint(`<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite><testcase name="x"><failure>\u001b[31m\u0000</failure></testcase></testsuite></testsuites>\n`, '--noout');
		expect(r.exitCode).not.toBe(0);
	});

	it('has a classname per kernel, a time per case, and set-up errors apart from failures', async () => {
		const xml = renderJunit(CELLS);
		expect(await xpath(xml, 'string(/testsuites/@tests)')).toBe('4');
		expect(await xpath(xml, 'concat(//testsuite[@name="stock"]/@tests, " ", //testsuite[@name="stock"]/@failures, " ", //testsuite[@name="stock"]/@errors, " ", //testsuite[@name="stock"]/@time)')).toBe('3 2 0 12.963');
		expect(await xpath(xml, 'concat(//testsuite[@name="patched"]/@failures, " ", //testsuite[@name="patched"]/@errors)')).toBe('0 1');
		expect(await xpath(xml, 'count(//testcase[@classname="stock"])')).toBe('3');
		expect(await xpath(xml, 'string(//testcase[@name="tcp-connect-blackhole [xfrm_resolve=1]"]/@classname)')).toBe('patched');
		expect(await xpath(xml, 'string(//testcase[@name="tcp-connect-blackhole [xfrm_resolve=1]"]/@time)')).toBe('90.000');
		expect(await xpath(xml, 'count(//testcase[@name="tcp-connect-blackhole [xfrm_resolve=1]"]/error)')).toBe('1');
		expect(await xpath(xml, 'count(//testcase[@name="tcp-connect-blackhole [xfrm_resolve=1]"]/failure)')).toBe('0');
		expect(await xpath(xml, 'count(//testcase[@name="ping-lost [larval_drop=1]"]/failure)')).toBe('1');
		expect(await xpath(xml, 'string(//testcase[@name="ping-lost [larval_drop=1]"]/failure)')).toContain('console line 412: warning:');
		expect(await xpath(xml, 'count(//testcase[@name="udp-datagrams-lost [larval_drop=1]"]/*[self::failure or self::error])')).toBe('0');
	});
});

describe('larval run --ktap', () => {
	it('prints KTAP version 1: a subtest per kernel, a result per cell, what failed as diagnostics before it', () => {
		expect(renderKtap(CELLS.slice(0, 2).concat(CELLS[3]!), ['stock', 'patched']).split('\n')).toEqual([
			'KTAP version 1',
			'1..2',
			'  KTAP version 1',
			'  # Subtest: stock',
			'  # 6.12.117, tcg, 2 vCPUs, PREEMPT',
			'  1..2',
			'  # lost 3/3',
			'  ok 1 udp-datagrams-lost [larval_drop=1]',
			'  # run 1: 3/3 echoed, expected all lost [31mred[0m nul bad-utf8:\ufffd\ufffd\ufffd half: <tag> & "quotes"',
			'  # lost 3/3',
			'  not ok 2 udp-datagrams-lost [larval_drop=0]',
			'# stock: pass:1 fail:1 skip:0 error:0',
			'not ok 1 stock',
			'  KTAP version 1',
			'  # Subtest: patched',
			'  1..1',
			'  # ERROR: patched: guest died during boot: [31mred[0m nul bad-utf8:\ufffd\ufffd\ufffd half: <tag> & "quotes"',
			'  # console tail [31mred[0m nul bad-utf8:\ufffd\ufffd\ufffd half: <tag> & "quotes"',
			'  not ok 1 tcp-connect-blackhole [xfrm_resolve=1]',
			'# patched: pass:0 fail:0 skip:0 error:1',
			'not ok 2 patched',
			'',
		]);
	});

	it('says not ok for a kernel that ran nothing', () => {
		expect(renderKtap([], ['distro'])).toBe('KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: distro\n  1..0\n# distro: pass:0 fail:0 skip:0 error:0\nnot ok 1 distro\n');
	});
});
