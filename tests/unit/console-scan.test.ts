import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consoleTail, kcsanRacers, outsideNetworking, scanConsole } from '../../harness/vm/console-scan.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures', name), 'utf8');

describe('console scan on real captures', () => {
	it('finds nothing in a clean distro boot', () => {
		expect(scanConsole(fixture('console-distro-clean-boot.txt'))).toEqual([]);
	});

	it('reports a sysrq panic once, with its call trace inside the report', () => {
		const f = scanConsole(fixture('console-distro-sysrq-panic.txt'));
		expect(f.map((x) => x.kind)).toEqual(['panic']);
		expect(f[0]!.text).toBe('Kernel panic - not syncing: sysrq triggered crash');
		expect(f[0]!.report).toMatch(/Call Trace:/);
		expect(f[0]!.report).toMatch(/sysrq_handle_crash/);
	});
});

/**
 * netdev CI's triggers, each in a capture: console-stock-* are real (the
 * stock kernel, lkdtm HUNG_TASK with hung_task_timeout_secs=2),
 * console-fmt-* are written to the 6.12 source's printk formats
 * (lib/ref_tracker.c, net/core/dev.c, mm/kmemleak.c, mm/kasan/report.c,
 * kernel/kcsan/report.c, kernel/locking/lockdep.c, kernel/rcu/tree_stall.h,
 * kernel/sched/core.c) for what no stock or distro guest can be made to print.
 */
describe("console scan on netdev CI's triggers", () => {
	const scan = (name: string) => scanConsole(fixture(name));
	const reportLines = (name: string, i = 0) => scan(name)[i]!.report.split('\n');

	it('hung task (real): each report once, to the end of its stack, after a boot that shows nothing', () => {
		const f = scan('console-stock-hung-task.txt');
		expect(f.map((x) => [x.kind, x.line, x.text])).toEqual([
			['hung-task', 249, 'INFO: task sh:55 blocked for more than 2 seconds.'],
			['hung-task', 268, 'INFO: task sh:55 blocked for more than 4 seconds.'],
		]);
		expect(f[0]!.report).toMatch(/lkdtm_HUNG_TASK/);
		expect(reportLines('console-stock-hung-task.txt').at(-1)).toMatch(/<\/TASK>$/);
	});

	it('refcount tracker: the leaked reference with its stack, then the WARNING it raises', () => {
		const f = scan('console-fmt-ref-tracker.txt');
		expect(f.map((x) => [x.kind, x.line])).toEqual([['ref-tracker', 2], ['warning', 12]]);
		expect(f[0]!.text).toBe('ref_tracker: net notrefcnt@00000000d3ae1c4b has 1/1 users at');
		expect(f[0]!.report).toMatch(/inet6_create/);
	});

	it('unregister_netdevice waiting for a device: once, however often it repeats', () => {
		const f = scan('console-fmt-netdev-refcount.txt');
		expect(f.map((x) => [x.kind, x.line, x.text])).toEqual([['netdev-refcount', 2, 'unregister_netdevice: waiting for veth-a to become free. Usage count = 2']]);
	});

	it("kmemleak: the scan's summary, with the objects it prints after it", () => {
		const f = scan('console-fmt-kmemleak.txt');
		expect(f.map((x) => [x.kind, x.line])).toEqual([['kmemleak', 1]]);
		expect(f[0]!.report).toMatch(/unreferenced object 0xffff888004a1c2c0 \(size 32\)/);
		expect(f[0]!.report).toMatch(/dst_alloc/);
	});

	it.each([
		['console-fmt-kasan.txt', 'kasan', 'BUG: KASAN: slab-use-after-free in xfrm_policy_queue_process+0x6a1/0x720', /Freed by task 0:/],
		['console-fmt-kcsan.txt', 'kcsan', 'BUG: KCSAN: data-race in xfrm_state_find / xfrm_state_gc_task', /value changed:/],
	] as const)('%s: one %s report, blank lines and its call trace inside, to its closing line', (name, kind, text, inside) => {
		const f = scan(name);
		expect(f.map((x) => [x.kind, x.line, x.text])).toEqual([[kind, 2, text]]);
		expect(f[0]!.report).toMatch(inside);
		expect(reportLines(name).at(-1)).toMatch(/\] ={60,}$/);
	});

	it('lockdep: one report, to the end of its stack backtrace', () => {
		const f = scan('console-fmt-lockdep.txt');
		expect(f.map((x) => [x.kind, x.line, x.text])).toEqual([['lockdep', 3, 'WARNING: possible circular locking dependency detected']]);
		expect(f[0]!.report).toMatch(/\*\*\* DEADLOCK \*\*\*/);
		expect(reportLines('console-fmt-lockdep.txt').at(-1)).toMatch(/<\/TASK>$/);
	});

	it('RCU stall: the stall with its NMI backtrace', () => {
		const f = scan('console-fmt-rcu-stall.txt');
		expect(f.map((x) => [x.kind, x.line])).toEqual([['rcu-stall', 1]]);
		expect(f[0]!.report).toMatch(/NMI backtrace for cpu 1/);
	});

	it('BUG: sleeping in atomic context, its call trace inside the report', () => {
		expect(scan('console-fmt-bug-atomic-sleep.txt').map((x) => [x.kind, x.line])).toEqual([['bug', 1]]);
	});
});

describe('console scan patterns', () => {
	const line = (msg: string) => `[   12.345678] ${msg}`;
	it.each([
		['warning', 'WARNING: CPU: 0 PID: 1 at net/xfrm/xfrm_state.c:123 xfrm_state_gc_task+0x1/0x2'],
		['bug', 'BUG: kernel NULL pointer dereference, address: 0000000000000008'],
		['bug', 'kernel BUG at net/core/skbuff.c:42!'],
		['oops', 'Oops: general protection fault, probably for non-canonical address'],
		['kasan', 'BUG: KASAN: slab-use-after-free in xfrm_policy_queue_process+0x1/0x2'],
		['lockdep', 'WARNING: possible circular locking dependency detected'],
		['hung-task', 'INFO: task ip:123 blocked for more than 120 seconds.'],
		['rcu-stall', 'rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:'],
		['panic', 'Kernel panic - not syncing: Fatal exception'],
		['kcsan', 'BUG: KCSAN: data-race in xfrm_policy_lookup_bytype / xfrm_policy_queue_process'],
		['lockdep', 'WARNING: possible recursive locking detected'],
		['lockdep', 'WARNING: inconsistent lock state'],
		['lockdep', 'WARNING: suspicious RCU usage'],
		['lockdep', 'WARNING: bad unlock balance detected!'],
		['rcu-stall', 'rcu: INFO: rcu_preempt self-detected stall on CPU'],
		['rcu-stall', 'rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 21002 jiffies s: 1093 root: 0x2/.'],
		['kmemleak', 'kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)'],
		['kmemleak', 'unreferenced object 0xffff888004a1c2c0 (size 32):'],
		['ref-tracker', 'ref_tracker: netdev@00000000a4b3c2d1 has 2/2 users at'],
		['netdev-refcount', 'unregister_netdevice: waiting for lo to become free. Usage count = 3'],
	] as const)('classifies %s', (kind, msg) => {
		const f = scanConsole(`${line('booting')}\n${line(msg)}\n${line('more')}\n`);
		expect(f[0]?.kind).toBe(kind);
		expect(f[0]?.line).toBe(2);
	});

	it('ignores guest userspace lines that merely mention the words', () => {
		expect(scanConsole(line('larval-init: WARNING: BUG: this is the guest talking'))).toEqual([]);
	});

	it('bounds a report at the end-of-trace marker', () => {
		const text = [line('WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x0'), line('Call Trace:'), line(' f+0x0/0x0'), line('---[ end trace 0000000000000000 ]---'), line('after')].join('\n');
		const f = scanConsole(text);
		expect(f).toHaveLength(1);
		expect(f[0]!.report.split('\n')).toHaveLength(4);
	});
});

/**
 * Which KCSAN reports fail a suite: console-race-core-hrtimer.txt holds the
 * two reports of the race flavour's first stress runs (6.12.117 + 0001-0012,
 * 2 vCPUs), both races of hrtimer_wakeup() in the timer interrupt with the
 * interrupted task's own hrtimer sleeper, in the core kernel.
 */
describe('KCSAN reports inside and outside the networking stack', () => {
	it('reads the racing functions, and calls two core-kernel races outside networking', () => {
		const f = scanConsole(fixture('console-race-core-hrtimer.txt'));
		expect(f.map((x) => x.kind)).toEqual(['kcsan', 'kcsan']);
		expect(f.map(kcsanRacers)).toEqual([['__rcu_read_unlock', 'hrtimer_wakeup'], ['_raw_spin_unlock_bh', 'hrtimer_wakeup']]);
		expect(f.map(outsideNetworking)).toEqual([true, true]);
	});

	it('fails a race that names an xfrm function, and every other kind of finding', () => {
		const [race] = scanConsole(fixture('console-fmt-kcsan.txt'));
		expect(kcsanRacers(race!)).toEqual(['xfrm_state_find', 'xfrm_state_gc_task']);
		expect(outsideNetworking(race!)).toBe(false);
		// one racer in the stack is enough
		expect(outsideNetworking({ ...race!, text: 'BUG: KCSAN: data-race in hrtimer_wakeup / udp_sendmsg' })).toBe(false);
		// a report it cannot read fails
		expect(outsideNetworking({ ...race!, text: 'BUG: KCSAN: something else' })).toBe(false);
		const [kasan] = scanConsole(fixture('console-fmt-kasan.txt'));
		expect(outsideNetworking(kasan!)).toBe(false);
	});
});

describe('the console tail of a dead guest', () => {
	const capture = fixture('console-distro-sysrq-panic.txt');

	it('reaches back to the start of the last report when that began before the last n lines', () => {
		const tail = consoleTail(capture, 10);
		expect(tail.split('\n')[0]).toMatch(/Kernel panic - not syncing: sysrq triggered crash/);
		expect(tail.endsWith(capture.trimEnd().split(/\r?\n/).at(-1)!)).toBe(true);
	});

	it('is the last n lines when they hold the whole report, or the report began too long ago', () => {
		const lines = capture.trimEnd().split(/\r?\n/);
		expect(consoleTail(capture, lines.length)).toBe(lines.join('\n'));
		const longAfter = `${capture}${'[ 9.0] later line\n'.repeat(300)}`;
		expect(consoleTail(longAfter, 5)).toBe('[ 9.0] later line\n'.repeat(5).trimEnd());
	});
});
