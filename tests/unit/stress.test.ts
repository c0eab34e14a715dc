import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTap } from '../../harness/probe/tap.js';
import {
	firstFailedRound, lastProgress, parseStressReport, STRESS_CHECKS, stressCommand, stressEchoCommands, stressProblems, stressRerunCommand, type StressVerdictInput,
} from '../../harness/suite/stress-plan.js';

/**
 * Real output of larval-stress in a guest (2 vCPUs, seed 1): the series
 * 0001-0011 with xfrm_resolve=1 (30 rounds, 9 of them failed), and stock
 * (3 rounds), whose held packets are dropped.
 */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', name), 'utf8');
const PATCHED = fixture('stress-patched-0001-0011-2cpu.tap');
const STOCK = fixture('stress-stock-2cpu.tap');

const rerun = (from: number) => stressRerunCommand({ kernel: { name: 'patched' }, cpus: 2, seed: 1, firstRound: from, rounds: 30 - from });

function verdict(text: string, over: Partial<StressVerdictInput> = {}): StressVerdictInput {
	return { seed: 1, rerun, firstRound: 0, tap: parseTap(text), exitStatus: 1, stderr: '', findings: [], hang: null, died: null, ...over };
}

describe('larval-stress report', () => {
	it('types the summary, every check and every failed round of the series without 0012', () => {
		const r = parseStressReport(parseTap(PATCHED))!;
		expect(r).toMatchObject({ seed: '1', rounds: 30, roundsPlanned: 30, failedRounds: 9, firstFailedRound: 0, stopped: 'rounds', cpus: 2, workers: 12, xfrmStat: true });
		expect(r.msPerRound).toBeCloseTo(185.342, 3);
		expect(r.totals).toMatchObject({ XfrmOutLarvalHeld: 457, XfrmOutLarvalReleased: 457, XfrmOutLarvalFailed: 1, XfrmOutLarvalWait: 111, XfrmOutLarvalWaitFailed: 0 });
		expect(Object.keys(r.checks)).toEqual(Object.keys(STRESS_CHECKS));
		expect(r.checks.wait).toEqual({ ok: true, failedRounds: 0, firstRound: null, rounds: [] });
		expect(r.checks.held).toEqual({ ok: false, failedRounds: 1, firstRound: 2, rounds: [2] });
		expect(r.checks.larval).toEqual({ ok: false, failedRounds: 5, firstRound: 0, rounds: [0, 2, 5, 12, 25] });
		expect(r.checks.asleep).toMatchObject({ ok: false, firstRound: 25, rounds: [25] });
		expect(r.checks.order).toMatchObject({ ok: false, failedRounds: 5, firstRound: 2 });
		expect(r.failed.map((x) => x.round)).toEqual([0, 2, 5, 12, 13, 14, 16, 25, 27]);
		const asleep = r.failed.find((x) => x.round === 25)!;
		expect(asleep.failed).toEqual(['larval', 'states', 'asleep']);
		expect(asleep.asleep).toBe(1);
		expect(asleep.problems).toMatch(/poll worker \d+ \(cpu \d, IPv4\) in poll 100\d ms after the install, wchan hrtimer_wakeup, ended by a signal/);
		expect(asleep.counters.XfrmOutLarvalWait).toBeGreaterThan(0);
		const held = r.failed.find((x) => x.round === 2)!;
		expect(held.failed).toEqual(['held', 'larval', 'states', 'order']);
		expect(held.problems).toMatch(/^1 datagrams never echoed \(held 1, .*; 1 held packets still queued when the round's states were flushed; .*arrival places 2,3,4,5,6,7,-,1\)/);
		expect(held.diag.flush_failed).toBe(1);
		expect(r.failed.find((x) => x.round === 13)!.failed).toEqual(['order']);
	});

	it('says what stock loses: every round drops datagrams, no counter of the series exists to move', () => {
		const r = parseStressReport(parseTap(STOCK))!;
		expect(r.rounds).toBe(3);
		expect(r.msPerRound).toBeGreaterThan(1000);
		expect(r.checks.held).toMatchObject({ ok: false, failedRounds: 3, firstRound: 0 });
		for (const x of r.failed) {
			expect(x.failed).toContain('held');
			expect(x.problems).toMatch(/datagrams never echoed/);
			expect(x.counters.XfrmOutNoStates).toBeGreaterThan(0);
			expect(x.counters.XfrmOutLarvalHeld).toBeUndefined();
		}
		expect(r.totals.XfrmOutLarvalHeld).toBe(0);
	});

	it('fails a run with its first round, the seed and the command that reruns it from there', () => {
		const p = stressProblems(verdict(PATCHED));
		expect(p.at(-1)).toBe('rerun: larval stress --kernel patched --cpus 2 --seed 1 --first-round 0 --rounds 30');
		expect(p.find((l) => l.includes(STRESS_CHECKS.asleep))).toBe(`round 25 (seed 1): no sender asleep after the install: failed in 1 of 30 rounds; round 25 (delay 1 ms, updsa): ${parseStressReport(parseTap(PATCHED))!.failed.find((x) => x.round === 25)!.problems}`);
		expect(p.find((l) => l.includes(STRESS_CHECKS.wait))).toBeUndefined();
		// held, larval, states, asleep, order, and the rerun
		expect(p).toHaveLength(6);
		expect(stressProblems(verdict(STOCK)).find((l) => l.includes(STRESS_CHECKS.held))).toMatch(/^round 0 \(seed 1\): no held packet failed: failed in 3 of 3 rounds; round 0 .*datagrams never echoed/);
		expect(firstFailedRound(parseTap(PATCHED))).toBe(0);
	});

	it('a clean run has no problem; a splat, a hang or a program that stops early fails it', () => {
		const clean = PATCHED.replace(/^not ok (\d+) - round \d+\n(  .*\n)*/gm, '').replace(/^not ok/gm, 'ok');
		expect(stressProblems(verdict(clean, { exitStatus: 0 }))).toEqual([]);
		expect(stressProblems(verdict(clean, { exitStatus: 139 }))[0]).toBe('seed 1: larval-stress exited 139 after passing every check');
		const splat = stressProblems(verdict(clean, { exitStatus: 0, findings: [{ kind: 'hung-task', line: 812, text: 'INFO: task larval-stress:301 blocked for more than 5 seconds.', report: '' }] }));
		expect(splat[0]).toBe('seed 1: kernel hung-task at console line 812: INFO: task larval-stress:301 blocked for more than 5 seconds.');
		expect(splat.at(-1)).toMatch(/^rerun: /);
		// Cut after round 7's progress line: what a killed or hung program leaves.
		const cut = PATCHED.slice(0, PATCHED.indexOf('# progress round=7 ') + 60).replace(/\n[^\n]*$/, '\n');
		expect(lastProgress(parseTap(cut))).toMatchObject({ round: 7, done: 8 });
		const hung = stressProblems(verdict(cut, { exitStatus: null, hang: 'larval-stress printed nothing for 121 s' }));
		expect(hung[0]).toBe('seed 1: hang: larval-stress printed nothing for 121 s (last progress: round 7, 8 rounds done)');
		expect(hung.some((l) => l.startsWith('round 5 (seed 1): no larval state outlived its SA, one larval state per SA: '))).toBe(true);
		expect(hung.at(-1)).toBe('rerun: larval stress --kernel patched --cpus 2 --seed 1 --first-round 0 --rounds 30');
		const died = stressProblems(verdict(`${cut}Bail out! round 8: worker 3 stuck in send, signals do not end it\n`));
		expect(died[0]).toBe('seed 1: larval-stress bailed out: round 8: worker 3 stuck in send, signals do not end it (last progress: round 7, 8 rounds done)');
	});
});

describe('larval-stress command lines', () => {
	it('asks for the seed, the rounds, the bounds and the workers it is given', () => {
		const cmd = stressCommand({ seed: 7, firstRound: 37, rounds: 100, seconds: 120, peer4: '192.0.2.2', peer6: '2001:db8:1::2', perCpu: { block: 3, tcp: 0 }, maxFailures: 20, asleepMs: 1000, replyWaitMs: 1000, roundBoundS: 60, progressEvery: 1 });
		expect(cmd.slice(0, 3)).toEqual(['larval-stress', '--control', '/run/larval/stress/km.sock']);
		const opt = (name: string) => cmd[cmd.indexOf(name) + 1];
		expect([opt('--seed'), opt('--first-round'), opt('--rounds'), opt('--seconds'), opt('--asleep-ms'), opt('--block'), opt('--tcp')]).toEqual(['7', '37', '100', '120', '1000', '3', '0']);
		expect(cmd).not.toContain('--held');
		expect(stressEchoCommands().map((e) => e.name)).toEqual(['echo-stress-udp4', 'echo-stress-tcp4', 'echo-stress-udp6', 'echo-stress-tcp6']);
		expect(stressEchoCommands()[0]!.args).toContain('--order');
		expect(stressEchoCommands()[1]!.args).not.toContain('--order');
	});

	it('reruns on the same kernel, flavour and vCPUs from the round given', () => {
		expect(stressRerunCommand({ kernel: { name: 'patched', config: 'debug' }, cpus: 4, seed: 9, firstRound: 412, rounds: 9588, minutes: 3, resolve: 1 }))
			.toBe('larval stress --kernel patched --config debug --cpus 4 --seed 9 --first-round 412 --rounds 9588 --minutes 3 --resolve 1');
		expect(stressRerunCommand({ kernel: { name: 'stock', config: 'base' }, cpus: 2, seed: 1, firstRound: 0, rounds: 5 })).toBe('larval stress --kernel stock --cpus 2 --seed 1 --first-round 0 --rounds 5');
	});
});
