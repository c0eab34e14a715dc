import { describe, expect, it } from 'vitest';
import { cpuListCount, cpusFromEnvironment, describeMachine, dynamicPreemptMode, machineOfProbe, parseCpus, preemptFromUname, preemptLabel } from '../../harness/vm/machine.js';
import { UsageError } from '../../harness/util/errors.js';

// `uname -v` of real kernels: Debian's cloud kernel (tests/fixtures/console-distro-clean-boot.txt, and
// its guest here), this project's host, Debian's RT flavour, stock 6.12 as built here (CONFIG_PREEMPT,
// a reproducible build's date) and the same without a preemption flag, as before base.config asked for one.
const DISTRO = '#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1~deb12u1 (2026-11-14)';
const HOST = '#1 SMP PREEMPT_DYNAMIC @0';
const DEBIAN_RT = '#1 SMP PREEMPT_RT Debian 6.1.106-3 (2024-08-26)';
const STOCK_PREEMPT = '#1 SMP PREEMPT 1970-01-01';
const STOCK_NONE = '#1 SMP 1970-01-01';

describe('the preemption model from uname -v', () => {
	it('reads PREEMPT_DYNAMIC, PREEMPT_RT, PREEMPT and none', () => {
		expect(preemptFromUname(DISTRO)).toEqual({ model: 'dynamic', dynamic: true });
		expect(preemptFromUname(HOST)).toEqual({ model: 'dynamic', dynamic: true });
		expect(preemptFromUname(DEBIAN_RT)).toEqual({ model: 'rt', dynamic: false });
		expect(preemptFromUname(STOCK_PREEMPT)).toEqual({ model: 'full', dynamic: false });
		expect(preemptFromUname(STOCK_NONE)).toEqual({ model: 'none', dynamic: false });
		expect(preemptFromUname('#1 PREEMPT Tue Jan 1 00:00:00 UTC 2030')).toEqual({ model: 'full', dynamic: false });
	});

	it('looks only at the flags after the build number, not at the build text', () => {
		expect(preemptFromUname('#3 SMP Debian PREEMPT (2026-01-01)')).toEqual({ model: 'none', dynamic: false });
		expect(preemptFromUname('')).toBeNull();
		expect(preemptFromUname('Linux')).toBeNull();
	});

	it("takes a dynamic kernel's mode in force from /sys/kernel/debug/sched/preempt", () => {
		// As Debian's kernel says it (a trailing blank included).
		expect(dynamicPreemptMode('none (voluntary) full \n')).toBe('voluntary');
		expect(dynamicPreemptMode('none voluntary (full)')).toBe('full');
		expect(dynamicPreemptMode('')).toBeNull();
		expect(machineOfProbe(`${DISTRO}\n0-1\nnone (voluntary) full \n`)).toEqual({ cpus: 2, preempt: { model: 'voluntary', dynamic: true } });
		// No debugfs: the model stays 'dynamic'.
		expect(machineOfProbe(`${DISTRO}\n0-1\n`)).toEqual({ cpus: 2, preempt: { model: 'dynamic', dynamic: true } });
		// Only a dynamic kernel's file counts.
		expect(machineOfProbe(`${STOCK_PREEMPT}\n0\nnone (voluntary) full\n`)).toEqual({ cpus: 1, preempt: { model: 'full', dynamic: false } });
	});

	it('names the model as the kernel configuration does', () => {
		expect(preemptLabel({ model: 'full', dynamic: false })).toBe('PREEMPT');
		expect(preemptLabel({ model: 'voluntary', dynamic: true })).toBe('PREEMPT_DYNAMIC (voluntary)');
		expect(preemptLabel({ model: 'dynamic', dynamic: true })).toBe('PREEMPT_DYNAMIC');
		expect(preemptLabel({ model: 'rt', dynamic: false })).toBe('PREEMPT_RT');
		expect(preemptLabel({ model: 'none', dynamic: false })).toBe('PREEMPT_NONE');
		expect(preemptLabel(null)).toBe('preemption unknown');
		expect(describeMachine({ accel: 'tcg', cpus: 2, preempt: { model: 'full', dynamic: false } })).toBe('tcg, 2 vCPUs, PREEMPT');
		expect(describeMachine({ accel: 'kvm', cpus: 1, preempt: null })).toBe('kvm, 1 vCPU, preemption unknown');
	});
});

describe('vCPU counts', () => {
	it('counts sysfs CPU lists', () => {
		expect(cpuListCount('0')).toBe(1);
		expect(cpuListCount('0-1\n')).toBe(2);
		expect(cpuListCount('0,2-3,7')).toBe(4);
		expect(cpuListCount('')).toBeNull();
	});

	it('takes 1..8 (CONFIG_NR_CPUS=8) and names a bad value in one line', () => {
		expect(parseCpus('1', '--cpus')).toBe(1);
		expect(parseCpus('8', '--cpus')).toBe(8);
		for (const bad of ['0', '9', '2.5', '-1', 'two', '', ' 2', '0x2']) {
			expect(() => parseCpus(bad, '--cpus')).toThrow(UsageError);
			expect(() => parseCpus(bad, '--cpus')).toThrow(`--cpus must be a whole number of vCPUs from 1 to 8, not "${bad}"`);
		}
	});

	it('defaults to 2, or LARVAL_CPUS', () => {
		expect(cpusFromEnvironment({})).toBe(2);
		expect(cpusFromEnvironment({ LARVAL_CPUS: '' })).toBe(2);
		expect(cpusFromEnvironment({ LARVAL_CPUS: '4' })).toBe(4);
		expect(() => cpusFromEnvironment({ LARVAL_CPUS: 'many' })).toThrow(/LARVAL_CPUS .* not "many"/);
	});
});
