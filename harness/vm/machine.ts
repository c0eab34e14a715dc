import { UsageError } from '../util/errors.js';

/**
 * The guest machine as results record it beside the kernel: the
 * accelerator, how many vCPUs the guest runs, and how its kernel preempts.
 * The series' hand-offs happen between CPUs and between two statements a
 * preemption can split, so a figure without these is not comparable.
 */

/** stock and patched are built with CONFIG_NR_CPUS=8 (kernel-patches/config/base.config): a 9th vCPU would stay offline. */
export const MAX_CPUS = 8;
/** One vCPU hides every race between a sender and the key manager's installation. */
export const DEFAULT_CPUS = 2;

export function parseCpus(value: string, source: string): number {
	if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_CPUS) {
		throw new UsageError(`${source} must be a whole number of vCPUs from 1 to ${MAX_CPUS}, not "${value}"`);
	}
	return Number(value);
}

/** LARVAL_CPUS (default 2): the vCPUs of a guest whose caller chose none, as in the vitest suites and `make test`. */
export function cpusFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
	const v = env.LARVAL_CPUS;
	return v === undefined || v === '' ? DEFAULT_CPUS : parseCpus(v, 'LARVAL_CPUS');
}

export const PREEMPT_MODELS = ['none', 'voluntary', 'full', 'dynamic', 'rt'] as const;
export type PreemptModel = (typeof PREEMPT_MODELS)[number];

export interface Preemption {
	/**
	 * The model the guest runs: a PREEMPT_DYNAMIC kernel's mode in force
	 * when it could be read, 'dynamic' when not.  `uname -v` names only
	 * PREEMPT, PREEMPT_DYNAMIC and PREEMPT_RT, so a kernel built with
	 * PREEMPT_VOLUNTARY reads as 'none'.
	 */
	model: PreemptModel;
	/** Built with PREEMPT_DYNAMIC: the model was chosen at boot (preempt=) and can change at run time. */
	dynamic: boolean;
}

/**
 * The preemption flags of `uname -v` ("#1 SMP PREEMPT_DYNAMIC Debian
 * 6.12.57-1 (2025-11-05)"): init/Makefile writes SMP and at most one
 * PREEMPT* word after the build number, then the build's date or text.
 */
export function preemptFromUname(version: string): Preemption | null {
	const words = version.trim().split(/\s+/);
	if (!words[0]?.startsWith('#')) return null;
	const flags = new Set<string>();
	for (const w of words.slice(1)) {
		if (w !== 'SMP' && !/^PREEMPT(_\w+)?$/.test(w) && w !== 'RT') break;
		flags.add(w);
	}
	// RT kernels before 5.x said "PREEMPT RT".
	if (flags.has('PREEMPT_RT') || flags.has('RT')) return { model: 'rt', dynamic: false };
	if (flags.has('PREEMPT_DYNAMIC')) return { model: 'dynamic', dynamic: true };
	// PREEMPT_LAZY (6.13 on) is preemptible like PREEMPT, only later for normal tasks.
	if (flags.has('PREEMPT') || flags.has('PREEMPT_LAZY')) return { model: 'full', dynamic: false };
	return { model: 'none', dynamic: false };
}

/** /sys/kernel/debug/sched/preempt on a PREEMPT_DYNAMIC kernel: "none voluntary (full)", the mode in force in parentheses. */
export function dynamicPreemptMode(text: string): PreemptModel | null {
	const m = /\((\w+)\)/.exec(text);
	const mode = m?.[1];
	return mode === 'none' || mode === 'voluntary' || mode === 'full' ? mode : null;
}

/** The number of CPUs in a sysfs list such as /sys/devices/system/cpu/online ("0-1", "0,2-3"). */
export function cpuListCount(list: string): number | null {
	let n = 0;
	for (const part of list.trim().split(',')) {
		const m = /^(\d+)(?:-(\d+))?$/.exec(part);
		if (!m) return null;
		n += (m[2] === undefined ? 0 : Number(m[2]) - Number(m[1])) + 1;
	}
	return n;
}

/** What the guest is asked once booted; one line each, the last only on PREEMPT_DYNAMIC kernels. */
export const MACHINE_PROBE = 'uname -v; cat /sys/devices/system/cpu/online; cat /sys/kernel/debug/sched/preempt 2>/dev/null; true';

/** MACHINE_PROBE's output: the online vCPUs and the preemption model. */
export function machineOfProbe(output: string): { cpus: number | null; preempt: Preemption | null } {
	const [uname = '', online = '', dynamicFile = ''] = output.split('\n');
	const built = preemptFromUname(uname);
	const mode = built?.dynamic ? dynamicPreemptMode(dynamicFile) : null;
	return { cpus: cpuListCount(online), preempt: built && mode ? { ...built, model: mode } : built };
}

/** As the kernel's configuration names it: PREEMPT, PREEMPT_DYNAMIC (voluntary), PREEMPT_RT... */
export function preemptLabel(p: Preemption | null): string {
	if (!p) return 'preemption unknown';
	const name = { none: 'PREEMPT_NONE', voluntary: 'PREEMPT_VOLUNTARY', full: 'PREEMPT', dynamic: 'PREEMPT_DYNAMIC', rt: 'PREEMPT_RT' }[p.model];
	return p.dynamic && p.model !== 'dynamic' ? `PREEMPT_DYNAMIC (${p.model})` : name;
}

/** What every result carries beside its kernel. */
export interface GuestMachine {
	accel: string;
	cpus: number | null;
	preempt: Preemption | null;
}

/** "tcg, 2 vCPUs, PREEMPT" */
export function describeMachine(m: GuestMachine): string {
	const cpus = m.cpus === null ? '? vCPUs' : `${m.cpus} vCPU${m.cpus === 1 ? '' : 's'}`;
	return `${m.accel}, ${cpus}, ${preemptLabel(m.preempt)}`;
}
