import { buildBaseImage, buildModuleOverlay, combineInitrd } from '../image/build.js';
import type { KernelTarget } from '../kernel/target.js';
import { progress } from '../util/progress.js';
import { type AccelChoice, chooseAccelerator } from './accel.js';
import { Vm } from './vm.js';

export interface GuestOptions {
	memoryMiB?: number;
	cpus?: number;
	append?: readonly string[];
	bootTimeoutMs?: number;
	/** More cpio layers on top of the base image (e.g. extra programs). */
	overlays?: ReadonlyArray<readonly [string, Buffer]>;
}

export interface Guest {
	vm: Vm;
	kernel: KernelTarget;
	accel: AccelChoice;
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
	const common = {
		bzImage: kernel.bzImage,
		initrd,
		clientPrivateKey: base.clientPrivateKey,
		hostPublicKey: base.hostPublicKey,
		memoryMiB: opts.memoryMiB,
		cpus: opts.cpus,
		append: opts.append,
	};
	const accel = await chooseAccelerator(common);
	progress(`booting ${kernel.name} (${kernel.release}) under ${accel.accel}`);
	const vm = await Vm.boot({ ...common, name: kernel.name.replace(/[^A-Za-z0-9_.-]/g, '_'), accel: accel.accel, bootTimeoutMs: opts.bootTimeoutMs });
	progress(`${kernel.name} answered ssh ${(vm.bootMs / 1000).toFixed(2)} s after QEMU started`);
	return { vm, kernel, accel };
}
