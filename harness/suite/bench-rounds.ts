import type { KernelTarget } from '../kernel/target.js';
import { topology } from '../net/topology.js';
import { progress } from '../util/progress.js';
import { bootGuest, type GuestOptions, machineOf } from '../vm/guest.js';
import type { GuestMachine } from '../vm/machine.js';
import { type BootTiming, timeFirstCommand } from './bench-boot.js';
import { bestBlast, BLASTS_PER_BOOT, type FastPathSample, measurePps } from './bench-fastpath.js';
import { type Mode, RESOLVE_1 } from './cases.js';
import { kernelHasResolve } from './lab.js';

/** Stock's own settings: the fast path as users of an unpatched kernel have it. */
const STOCK_DEFAULT: Mode = { id: 'default', sysctls: {} };
/** The series' kernel with its switch at its default, off: sysctlSteps() resets it. */
const SWITCH_OFF: Mode = { id: 'xfrm_resolve=0', sysctls: {} };

export interface RoundSample extends FastPathSample, GuestMachine {
	boot: BootTiming;
}

/**
 * @repeat rounds, each booting every kernel in turn (in reverse order
 * every other round): the boot and its first command are timed, then the
 * fast-path blasts (the series' mode on a kernel that has it, stock's
 * defaults elsewhere).  Interleaving the kernels, rather than running one
 * kernel's repeats and then the other's, spreads whatever else loads the
 * host over both sides of the ratio.
 */
export async function benchRounds(kernels: readonly KernelTarget[], repeat: number, guestOptions: Pick<GuestOptions, 'cpus'> = {}): Promise<RoundSample[]> {
	const out: RoundSample[] = [];
	for (let round = 1; round <= repeat; round++) {
		// ABBA: a load that grows or fades across the run favours neither side.
		const order = round % 2 ? kernels : [...kernels].reverse();
		for (const kernel of order) {
			const guest = await bootGuest(kernel, guestOptions);
			try {
				const boot = await timeFirstCommand(guest.vm);
				const resolve = await kernelHasResolve(guest.vm);
				const mode: Mode = resolve ? RESOLVE_1 : STOCK_DEFAULT;
				// On, off, off, on: a slow phase of the host, or a guest still warming up, hits both settings alike.
				const modes = [...Array(BLASTS_PER_BOOT).keys()].flatMap((k) => (!resolve ? [mode] : k % 2 ? [SWITCH_OFF, mode] : [mode, SWITCH_OFF]));
				const blasts = await measurePps(guest.vm, topology('transport'), modes);
				const pps = bestBlast(blasts.filter((_, i) => modes[i] === mode));
				const off = blasts.filter((_, i) => modes[i] === SWITCH_OFF);
				const switchedOff = off.length ? bestBlast(off) : undefined;
				progress(`round ${round}/${repeat} ${kernel.name}: first command ${(boot.firstCommandMs / 1000).toFixed(2)} s, ${blasts.map((b, i) => `${Math.round(b.receivedPps)} [${modes[i]!.id}]`).join(', ')} pps received`);
				out.push({ kernel: kernel.name, mode: mode.id, round, ...machineOf(guest), boot, pps, switchedOff, blasts });
			} finally {
				await guest.vm.stop();
			}
		}
	}
	return out;
}
