import { buildBaseImage, buildModuleOverlay, combineInitrd } from '../image/build.js';
import type { KernelTarget } from '../kernel/target.js';
import { progress } from '../util/progress.js';
import { type AccelChoice, chooseAccelerator } from './accel.js';
import { cpusFromEnvironment, type GuestMachine, MACHINE_PROBE, machineOfProbe, type Preemption, preemptLabel } from './machine.js';
import { Vm } from './vm.js';
import { UsageError } from '../util/errors.js';
import { pathComponent } from '../util/paths.js';

export interface GuestOptions {
	memoryMiB?: number;
	/** Default: LARVAL_CPUS, else 2. */
	cpus?: number;
	append?: readonly string[];
	bootTimeoutMs?: number;
	/**
	 * Under QEMU's instruction counter (qemu-args.ts ICOUNT): TCG, one
	 * vCPU, whatever KVM or LARVAL_CPUS say.
	 */
	icount?: boolean;
	/** More cpio layers on top of the base image (e.g. extra programs). */
	overlays?: ReadonlyArray<readonly [string, Buffer]>;
}

export interface Guest {
	vm: Vm;
	kernel: KernelTarget;
	accel: AccelChoice;
	/** vCPUs online in the guest (what it booted with, as the guest counts them). */
	cpus: number;
	/** From the booted kernel (uname -v); null when it did not say. */
	preempt: Preemption | null;
}

export function machineOf(g: Guest): GuestMachine {
	return { accel: g.accel.accel, cpus: g.cpus, preempt: g.preempt };
}

const overlayCache = new Map<string, Buffer>();

/** Everything between "this kernel" and "a guest answering commands". */
export async function bootGuest(kernel: KernelTarget, opts: GuestOptions = {}): Promise<Guest> {
	const base = await buildBaseImage();
	const overlays: Array<readonly [string, Buffer]> = [];
	if (kernel.modules) {
		const key = `${kernel.modules.root}:${kernel.modules.names.join(',')}`;
		let overlay = overlayCache.get(key);
		if (!overlay) {
			overlay = await buildModuleOverlay(kernel.modules.root, kernel.release, kernel.modules.names);
			overlayCache.set(key, overlay);
		}
		overlays.push([`modules:${key}`, overlay]);
	}
	overlays.push(...(opts.overlays ?? []));
	const initrd = combineInitrd(base, overlays);
	if (opts.icount && opts.cpus !== undefined && opts.cpus !== 1) throw new UsageError(`an instruction-counting guest runs one vCPU, not ${opts.cpus}`);
	const cpus = opts.icount ? 1 : (opts.cpus ?? cpusFromEnvironment());
	const common = {
		bzImage: kernel.bzImage,
		initrd,
		clientPrivateKey: base.clientPrivateKey,
		hostPublicKey: base.hostPublicKey,
		memoryMiB: opts.memoryMiB,
		cpus,
		append: opts.append,
		// Debian's kernel has no X86_MPPARSE: with pci=noacpi it would bring up 1 of its vCPUs.
		acpiPciIrqs: kernel.kind === 'distro' && cpus > 1,
		icount: opts.icount,
	};
	const accel: AccelChoice = opts.icount ? { accel: 'tcg', reason: 'QEMU counts instructions (-icount) only under TCG' } : await chooseAccelerator(common);
	progress(`booting ${kernel.name} (${kernel.release}) under ${accel.accel}${opts.icount ? ' -icount' : ''} with ${cpus} vCPU(s)`);
	const vm = await Vm.boot({ ...common, name: pathComponent(kernel.name), accel: accel.accel, bootTimeoutMs: opts.bootTimeoutMs });
	try {
		const probed = machineOfProbe(await vm.run(MACHINE_PROBE, { timeoutMs: 30_000 }));
		// A kernel without SMP, or with a smaller NR_CPUS, runs fewer than QEMU gives it: the guest's count is the one recorded.
		const online = probed.cpus ?? cpus;
		const fewer = online === cpus ? '' : ` of ${cpus}`;
		progress(`${kernel.name} answered ssh ${(vm.bootMs / 1000).toFixed(2)} s after QEMU started; ${online}${fewer} vCPU(s) online, ${preemptLabel(probed.preempt)}`);
		return { vm, kernel, accel, cpus: online, preempt: probed.preempt };
	} catch (e) {
		await vm.stop({ failed: true });
		throw e;
	}
}
