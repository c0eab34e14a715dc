import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanConsole } from '../../harness/vm/console-scan.js';

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
