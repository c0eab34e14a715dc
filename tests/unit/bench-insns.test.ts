import { describe, expect, it } from 'vitest';
import { compareFigures } from '../../harness/report/bench-compare.js';
import { benchFigures } from '../../harness/report/bench-figures.js';
import { deadEndSetup, type InsnRun, insnRunOf, type InsnSample, meetsTarget, noisePct, summarizeInsns } from '../../harness/suite/bench-insns.js';
import { topology } from '../../harness/net/topology.js';

const tap = (op: string, tsc: number[], ops = 1000, errors = 0) =>
	`TAP version 14\n${errors ? 'not ' : ''}ok 1 - ${op}\n  ---\n  op: "${op}"\n  family: 4\n  ops: ${ops}\n  tsc: [${tsc.join(', ')}]\n  monotonic_ns: ${tsc.reduce((a, b) => a + b, 0)}\n  errors: ${errors}\n  first_errno: "${errors ? 'EPERM' : '0'}"\n  ...\n1..1\n`;

describe('larval-insns output', () => {
	it('gives instructions per call for each batch', () => {
		const r = insnRunOf(tap('send', [16842000, 16845000]), 'send', 4);
		expect(r.perCall).toEqual([16842, 16845]);
		expect(r.problems).toEqual([]);
	});

	it('says when calls failed or the program said nothing', () => {
		expect(insnRunOf(tap('send', [1000], 1000, 3), 'send', 4).problems).toEqual(['send (IPv4): 3 call(s) failed, the first with EPERM']);
		expect(insnRunOf('', 'poll', 6).problems).toEqual([expect.stringMatching(/--op poll \(IPv6\): TAP incomplete/)]);
		expect(insnRunOf(tap('poll', [0]), 'poll', 4).problems).toEqual([expect.stringMatching(/reported no counts/)]);
	});
});

const run = (op: InsnRun['op'], perCall: number[], family: 4 | 6 = 4): InsnRun => ({ op, family, ops: 1000, perCall, monotonicNs: 0, errors: 0, firstErrno: '0', problems: [] });
const sample = (kernel: string, setting: InsnSample['setting'], round: number, send: number[]): InsnSample => ({ kernel, round, setting, runs: [run('send', send)] });

describe('the instruction-count figures', () => {
	const samples = [
		sample('stock', 'stock', 1, [16842, 16842, 16843, 16839, 16842]),
		sample('patched', 'off', 1, [16842, 16842, 16842, 16842, 17500]),
		sample('patched', 'on', 1, [16859, 16859, 16859, 16860, 16859]),
		sample('stock', 'stock', 2, [16842, 16842, 16842, 16842, 16842]),
		sample('patched', 'off', 2, [16842, 16842, 16843, 16842, 16842]),
		sample('patched', 'on', 2, [16859, 16859, 16859, 16859, 16859]),
	];
	const rows = summarizeInsns(samples, 'stock').filter((r) => r.op === 'send' && r.family === 4);
	const [stock, off, on] = rows;

	it('is robust to a batch that took an interrupt: medians, and noise from the median deviation', () => {
		expect(off!.perCall).toBe(16842);
		expect(off!.noisePct).toBe(0);
		expect(off!.spreadPct).toBeCloseTo(((17500 - 16842) / 16842) * 100);
		expect(noisePct([10, 11, 12, 9, 8])).toBeCloseTo(14.826);
		expect(noisePct([10, 10, 12, 10, 8])).toBe(0);
	});

	it('divides by stock round by round, and holds each setting to its own target', () => {
		expect(stock!.ratio).toBeNull();
		expect(off!.ratio).toBe(1);
		expect(meetsTarget(off!)).toBe(true);
		expect(on!.ratio).toBeCloseTo(16859 / 16842);
		expect(on!.basePerCall).toBe(16842);
		// 17 instructions on 16,842 is 0.1009 %: over the 0.1 % target, and the noise is too small to excuse it.
		expect(on!.target).toBe(1.001);
		expect(meetsTarget(on!)).toBe(false);
	});

	it('gates each ratio on its own noise, not on the timings\' percentage', () => {
		const report = (onValue: number) => ({ insns: { baseline: 'stock', payload: 64, opsPerBatch: { send: 1000 }, batches: 5, warmup: 200, samples: [], rows: rows.map((r) => (r === on ? { ...r, ratio: onValue } : r)) } });
		const base = benchFigures(report(1.001));
		const gated = base.filter((f) => f.gate).map((f) => f.id);
		expect(gated).toEqual(['insns/call send IPv4 patched [xfrm_resolve off] / stock', 'insns/call send IPv4 patched [xfrm_resolve on] / stock']);
		// +0.1 % is nothing to a timing's 50 %, but twice this figure's tolerance (its noise, or the 0.05 % floor).
		const c = compareFigures(base, benchFigures(report(1.002)), 50);
		expect(c.regressions.map((x) => x.id)).toEqual(['insns/call send IPv4 patched [xfrm_resolve on] / stock']);
		expect(c.changes.find((x) => x.id.startsWith('insns/call send IPv4 patched [xfrm_resolve on] /'))!.deterministic).toBe(true);
		expect(compareFigures(base, benchFigures(report(1.0011)), 50).regressions).toEqual([]);
	});
});

describe('the dead end', () => {
	it('routes a documentation address per family to a dummy device, behind a policy and an SA of its own', () => {
		const lines = deadEndSetup(topology('transport')).join('\n');
		expect(lines).toMatch(/ip -n A link add insns0 type dummy/);
		expect(lines).toMatch(/ip -n A -4 route add 198\.51\.100\.9\/32 dev insns0/);
		expect(lines).toMatch(/ip -n A -6 route add 2001:db8:9::9\/128 dev insns0/);
		expect(lines).toMatch(/xfrm state add src 192\.0\.2\.1 dst 198\.51\.100\.9 proto esp/);
		expect(lines).toMatch(/xfrm policy add src 2001:db8:1::1\/128 dst 2001:db8:9::9\/128 dir out/);
	});
});
