import { describe, expect, it } from 'vitest';
import { FUZZ_NAMESPACES, FUZZ_PEERS, fuzzCommand, fuzzNetworkSetup, fuzzProblems, type FuzzVerdictInput, kindsBelow, parseErrnos, parseFuzzSummary, parseSeed, reproduceCommand } from '../../harness/suite/fuzz-plan.js';
import { parseTap } from '../../harness/probe/tap.js';

// What larval-fuzz prints (trimmed to a few kinds).
const TAP = `TAP version 14
# larval-fuzz seed=42 seconds=30 max_ops=0 namespaces=2 peers=8
ok 1 - set-up
  ---
  xfrm_resolve: true
  ...
# progress ops=700 acquires=20 t=5001ms
ok 2 - no call overran its bound
  ---
  overruns: 0
  overrun_ms: 5000
  ...
ok 3 - summary
  ---
  seed: 42
  ops: 4125
  elapsed_ms: 30012.250
  namespaces: 2
  ops_policy_add: 353
  fails_policy_add: 8
  errnos_policy_add: "EINVAL=3 EEXIST=5"
  ops_connect: 592
  fails_connect: 315
  errnos_connect: "EINPROGRESS=100 EALREADY=46 E?200=1"
  ops_acquire: 125
  fails_acquire: 0
  ops_acq_flush: 0
  fails_acq_flush: 0
  result: "pass"
  ...
# last 4101 29990.100 connect fd=12 udp4 nonblock 192.0.2.2 err=0
# last 4102 29990.300 close fd=12 used=1 abort=0
1..3
`;

const OVERRUN = `TAP version 14
ok 1 - set-up
not ok 2 - no call overran its bound
  ---
  overruns: 1
  overrun_ms: 5000
  overrun_0: "op 17 connect tcp took 9000 ms (bound 1500 ms)"
  ...
ok 3 - summary
  ---
  seed: 3
  ops: 20
  result: "fail"
  ...
1..3
`;

function verdict(over: Partial<FuzzVerdictInput>): FuzzVerdictInput {
	return { seed: 42, reproduce: 'larval fuzz --kernel patched --seed 42 --minutes 1', tap: parseTap(TAP), exitStatus: 0, stderr: '', findings: [], hang: null, died: null, leaks: null, ...over };
}

describe('larval-fuzz summary', () => {
	it('reads the count, refusals and errnos of each kind', () => {
		const s = parseFuzzSummary(parseTap(TAP))!;
		expect(s.seed).toBe('42');
		expect(s.ops).toBe(4125);
		expect(s.elapsedMs).toBeCloseTo(30012.25);
		expect(s.kinds.policy_add).toEqual({ ops: 353, fails: 8, errnos: { EINVAL: 3, EEXIST: 5 } });
		expect(s.kinds.connect!.errnos).toEqual({ EINPROGRESS: 100, EALREADY: 46, 'E?200': 1 });
		expect(s.kinds.acquire).toEqual({ ops: 125, fails: 0, errnos: {} });
		expect(s.result).toBe('pass');
		expect(s.overruns).toEqual([]);
		expect(s.lastOps).toEqual(['4101 29990.100 connect fd=12 udp4 nonblock 192.0.2.2 err=0', '4102 29990.300 close fd=12 used=1 abort=0']);
	});

	it('lists the overruns', () => {
		expect(parseFuzzSummary(parseTap(OVERRUN))!.overruns).toEqual(['op 17 connect tcp took 9000 ms (bound 1500 ms)']);
	});

	it('is null when the fuzzer died before its summary', () => {
		expect(parseFuzzSummary(parseTap('TAP version 14\nok 1 - set-up\n'))).toBeNull();
	});

	it('names the kinds below their floor, missing ones included', () => {
		const s = parseFuzzSummary(parseTap(TAP))!;
		expect(kindsBelow(s, { connect: 10, acquire: 200, acq_flush: 1, netns: 1 })).toEqual(['acquire: 125 < 200', 'acq_flush: 0 < 1', 'netns: 0 < 1']);
	});

	it('parses an errno list, and nothing from nothing', () => {
		expect(parseErrnos('EAGAIN=12 other=1')).toEqual({ EAGAIN: 12, other: 1 });
		expect(parseErrnos(undefined)).toEqual({});
	});
});

describe('what fails a fuzz run', () => {
	it('nothing, for a clean run', () => {
		expect(fuzzProblems(verdict({}))).toEqual([]);
	});

	it('a splat, naming the seed and how to rerun it', () => {
		const p = fuzzProblems(verdict({ findings: [{ kind: 'kasan', line: 812, text: 'BUG: KASAN: slab-use-after-free in xfrm_state_gc_task', report: '' }] }));
		expect(p).toEqual(['seed 42: kernel kasan at console line 812: BUG: KASAN: slab-use-after-free in xfrm_state_gc_task', 'reproduce: larval fuzz --kernel patched --seed 42 --minutes 1']);
	});

	it('a hang, without blaming the output it never finished', () => {
		const p = fuzzProblems(verdict({ hang: 'larval-fuzz still running 90 s after it started', tap: parseTap('TAP version 14\nok 1 - set-up\n'), exitStatus: null }));
		expect(p).toEqual(['seed 42: hang: larval-fuzz still running 90 s after it started', 'reproduce: larval fuzz --kernel patched --seed 42 --minutes 1']);
	});

	it('an overrun, and the exit status that goes with it', () => {
		const p = fuzzProblems(verdict({ tap: parseTap(OVERRUN), exitStatus: 1 }));
		expect(p.slice(0, 2)).toEqual(['seed 42: larval-fuzz: not ok: no call overran its bound', 'seed 42: larval-fuzz exited 1']);
	});

	it('a fuzzer that bailed out or was cut short', () => {
		expect(fuzzProblems(verdict({ tap: parseTap('TAP version 14\nBail out! setns(/run/netns/fz0): EPERM\n'), exitStatus: 1 }))[0]).toBe('seed 42: larval-fuzz bailed out: setns(/run/netns/fz0): EPERM');
		expect(fuzzProblems(verdict({ tap: parseTap('TAP version 14\nok 1 - set-up\n'), exitStatus: 139, stderr: 'Segmentation fault\n' }))[0]).toBe('seed 42: larval-fuzz output incomplete (exit status 139): Segmentation fault');
	});

	it('a leak, with its allocation', () => {
		const p = fuzzProblems(verdict({ leaks: [{ object: '0xffff', size: 64, comm: 'larval-fuzz', backtrace: ['kmalloc_trace_noprof+0x21/0x40', 'xfrm_state_alloc+0x2a/0x1f0'] }] }));
		expect(p[0]).toBe('seed 42: kmemleak: 64 bytes from larval-fuzz: kmalloc_trace_noprof+0x21/0x40 < xfrm_state_alloc+0x2a/0x1f0');
	});
});

describe('fuzz command lines', () => {
	it('reruns a debug-kernel run with its flavour', () => {
		expect(reproduceCommand({ name: 'patched', config: 'debug' }, 9, 5)).toBe('larval fuzz --kernel patched --config debug --seed 9 --minutes 5');
		expect(reproduceCommand({ name: 'patched', config: 'base' }, 9, 0.5)).toBe('larval fuzz --kernel patched --seed 9 --minutes 0.5');
		expect(reproduceCommand({ name: 'patched', config: 'base' }, 9, 0.5, 4)).toBe('larval fuzz --kernel patched --cpus 4 --seed 9 --minutes 0.5');
	});

	it('takes whole, exactly representable seeds only', () => {
		expect(parseSeed('0')).toBe(0);
		expect(parseSeed('4294967295')).toBe(4294967295);
		for (const bad of ['', '-1', '1.5', 'x', '9007199254740993']) expect(() => parseSeed(bad)).toThrow(/--seed/);
	});

	it('gives larval-fuzz every namespace with its addresses, and the far peers', () => {
		const cmd = fuzzCommand({ seed: 5, seconds: 30, overrunMs: 5000 });
		expect(cmd.filter((w, i) => cmd[i - 1] === '--ns')).toEqual(FUZZ_NAMESPACES.map((n) => `/run/netns/${n.name},${n.v4},${n.v6}`));
		expect(cmd.filter((w, i) => cmd[i - 1] === '--peer')).toEqual(FUZZ_PEERS);
		expect(cmd.join(' ')).toContain('--seed 5 --seconds 30 --overrun-ms 5000');
	});

	it('builds each namespace the fuzzer enters, with a route to every peer', () => {
		const script = fuzzNetworkSetup().join('\n');
		for (const n of FUZZ_NAMESPACES) expect(script).toContain(`ip netns add ${n.name}`);
		for (const prefix of ['203.0.113.0/24', '198.51.100.0/24', '2001:db8:3::/64', '2001:db8:2::/64']) {
			expect(script.match(new RegExp(`route add ${prefix.replace(/[.]/g, '\\.')} via`, 'g'))).toHaveLength(FUZZ_NAMESPACES.length);
		}
	});
});
