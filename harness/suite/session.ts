import type { KernelTarget } from '../kernel/target.js';
import { topology, type TopologyName } from '../net/topology.js';
import { positiveCount } from '../util/count.js';
import { progress } from '../util/progress.js';
import { bootGuest, type Guest, type GuestOptions, machineOf } from '../vm/guest.js';
import type { GuestMachine } from '../vm/machine.js';
import type { Vm } from '../vm/vm.js';
import { type ConsoleFinding } from '../vm/console-scan.js';
import type { Case, Check, Mode } from './cases.js';
import { type CaseRun, kernelHasResolve, Lab, type LabKeying } from './lab.js';
import { ikeDaemonOverlay } from '../image/ike-overlay.js';
import { describeOutcome, type Outcome, outcomeOf } from './outcome.js';

export interface CellResult extends GuestMachine {
	kernel: string;
	release: string;
	caseId: string;
	mode: string;
	outcomes: Outcome[];
	/** Per run, what contradicted the expectation (empty: as expected). */
	violations: string[][];
	/** Set when the case could not run: guest died, timed out, set-up failed. */
	error?: string;
	findings: ConsoleFinding[];
	/** How long the cell took, its runs with what they set up (a guest, a lab), in ms. */
	ms?: number;
}

/** The debug flavour (KASAN, lockdep, kmemleak) runs about ten times slower under TCG. */
const DEBUG_TIME_SCALE = 10;

/** How much longer the harness waits for @kernel than for the base flavour. */
export function timeScaleOf(kernel: KernelTarget): number {
	return kernel.config === 'debug' ? DEBUG_TIME_SCALE : 1;
}

export function cellPassed(c: CellResult): boolean {
	return !c.error && c.findings.length === 0 && c.outcomes.length > 0 && c.violations.every((v) => v.length === 0);
}

export function cellText(c: CellResult): string {
	if (c.error) return `ERROR: ${c.error.split('\n')[0]}`;
	const runs = c.outcomes.map(describeOutcome);
	const same = runs.every((r) => r === runs[0]);
	return same && runs.length > 1 ? `${runs[0]} (×${runs.length})` : runs.join(' | ');
}

/** One run of @c in @mode: the mode's sysctls, then the case's own. */
export function runCaseOnce(lab: Lab, c: Case, mode: Mode): Promise<CaseRun> {
	return lab.run(c.probe, c.km, { ...mode.sysctls, ...c.sysctls }, { fromServer: c.fromServer, during: c.during, firewall: c.firewall });
}

/**
 * One kernel's guest, with labs (topologies) set up on demand.  When a case
 * kills or wedges the guest, the next case gets a fresh one: a crash is a
 * result for the case that caused it, not the end of the run.
 */
export class KernelSession {
	private guest: Guest | undefined;
	private labs = new Map<TopologyName, Lab>();
	private seenFindings = 0;

	/**
	 * The debug flavour (KASAN, lockdep, kmemleak) runs everything about ten
	 * times slower under TCG: the harness's own limits stretch with it.
	 */
	readonly timeScale: number;

	/**
	 * @keying: who keys every lab of this guest (a topology's namespaces exist once per guest, so one or the other).
	 * @guestOptions: the guests' vCPUs (default: LARVAL_CPUS, else 2), and
	 * overlays every guest of the session carries (host programs, say).
	 */
	constructor(readonly kernel: KernelTarget, readonly keying: LabKeying = 'test', private readonly guestOptions: Pick<GuestOptions, 'cpus' | 'overlays'> = {}) {
		this.timeScale = timeScaleOf(kernel);
	}

	get accel(): string {
		return this.guest?.accel.accel ?? '?';
	}

	/** The current guest's accelerator, vCPUs and preemption model (unknown before the first boot). */
	get guestMachine(): GuestMachine {
		return this.guest ? machineOf(this.guest) : { accel: '?', cpus: null, preempt: null };
	}

	private async ensureGuest(): Promise<Guest> {
		if (!this.guest || !this.guest.vm.alive) {
			await this.guest?.vm.stop({ failed: true });
			const overlays: GuestOptions['overlays'] = [...(this.keying === 'test' ? [] : [[this.keying, await ikeDaemonOverlay(this.keying)] as const]), ...(this.guestOptions.overlays ?? [])];
			this.guest = await bootGuest(this.kernel, { ...this.guestOptions, overlays });
			this.labs.clear();
			this.seenFindings = 0;
		}
		return this.guest;
	}

	/** The session's guest, booted on first use, for a scenario that makes its own namespaces (no lab). */
	async vm(): Promise<Vm> {
		return (await this.ensureGuest()).vm;
	}

	/** Whether the kernel has the series' switch, net.core.xfrm_resolve. */
	async hasResolve(): Promise<boolean> {
		const g = await this.ensureGuest();
		return kernelHasResolve(g.vm);
	}

	/** The topology's lab in this session's guest (booting the guest and setting the lab up on first use). */
	async lab(name: TopologyName): Promise<Lab> {
		await this.ensureGuest();
		let lab = this.labs.get(name);
		if (!lab) {
			lab = await Lab.setUp(this.guest!.vm, topology(name), this.keying, this.timeScale);
			this.labs.set(name, lab);
		}
		return lab;
	}

	/** Runs a case `repeat` times in one mode and checks each run. */
	async runCell(c: Case, mode: Mode, check: Check, repeat: number): Promise<CellResult> {
		positiveCount(repeat, 'the repeat count');
		const started = performance.now();
		const cell: CellResult = {
			kernel: this.kernel.name,
			release: this.kernel.release,
			...this.guestMachine,
			caseId: c.id,
			mode: mode.id,
			outcomes: [],
			violations: [],
			findings: [],
		};
		try {
			for (let i = 0; i < repeat; i++) {
				const lab = await this.lab(c.topology);
				Object.assign(cell, this.guestMachine);
				const o = outcomeOf(await runCaseOnce(lab, c, mode));
				cell.outcomes.push(o);
				cell.violations.push(check(o));
				progress(`${this.kernel.name} ${c.id} [${mode.id}] run ${i + 1}/${repeat}: ${describeOutcome(o)}`);
			}
		} catch (e) {
			cell.error = (e as Error).message + ((e as { detail?: string }).detail ? `\n${(e as { detail?: string }).detail}` : '');
			progress(`${this.kernel.name} ${c.id} [${mode.id}]: ${cell.error.split('\n')[0]}`);
		}
		cell.findings = this.newFindings();
		cell.ms = performance.now() - started;
		return cell;
	}

	/** Console findings (oopses, lockdep, KASAN, ...) since the last call: they belong to what ran in between. */
	newFindings(): ConsoleFinding[] {
		if (!this.guest) return [];
		const all = this.guest.vm.findings();
		const fresh = all.slice(this.seenFindings);
		this.seenFindings = all.length;
		return fresh;
	}

	async close(failed = false): Promise<string | null> {
		const r = await this.guest?.vm.stop({ failed });
		this.guest = undefined;
		return r?.consoleLog ?? null;
	}
}
