import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { UsageError } from '../util/errors.js';
import { cacheKey } from '../util/hash.js';
import { cacheRoot } from '../util/paths.js';
import { progress } from '../util/progress.js';
import type { Accelerator } from './qemu-args.js';
import { type BootOptions, QEMU, Vm } from './vm.js';

export interface AccelChoice {
	accel: Accelerator;
	/** Why: the probe's outcome, or the override that decided. */
	reason: string;
}

function kvmUsable(): string | null {
	if (!existsSync('/dev/kvm')) return '/dev/kvm does not exist';
	try {
		accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
	} catch {
		return '/dev/kvm is not accessible to this user';
	}
	return null;
}

/**
 * The probe's verdict holds for one kernel on one host boot and QEMU: it is
 * keyed by all three, so a kernel that cannot boot under KVM (or at all)
 * decides nothing for any other kernel.
 */
export function probeCacheKey(parts: { bootId: string; qemuVersion: string; kernel: Uint8Array }): string {
	return cacheKey([['boot', parts.bootId], ['qemu', parts.qemuVersion], ['kernel', parts.kernel]]);
}

async function probeCacheKeyHere(bzImage: string): Promise<string> {
	const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
	const qemu = await execa(QEMU, ['--version'], { reject: false });
	return probeCacheKey({ bootId, qemuVersion: qemu.stdout.split('\n')[0] ?? '', kernel: readFileSync(bzImage) });
}

/** LARVAL_ACCEL=kvm|tcg, or null for auto (the default). */
export function forcedAccelerator(env: NodeJS.ProcessEnv = process.env): Accelerator | null {
	const v = env.LARVAL_ACCEL;
	if (v === 'kvm' || v === 'tcg') return v;
	if (v && v !== 'auto') throw new UsageError(`LARVAL_ACCEL must be kvm, tcg or auto, not "${v}"`);
	return null;
}

/** The verdict recorded under @key in @dir, if any. */
export function cachedChoice(dir: string, key: string): AccelChoice | null {
	const path = join(dir, `${key}.json`);
	if (!existsSync(path)) return null;
	const { accel, reason } = JSON.parse(readFileSync(path, 'utf8')) as AccelChoice;
	return { accel, reason };
}

/** Records a verdict (written whole: a reader never sees half of one). */
export function recordChoice(dir: string, key: string, choice: AccelChoice): void {
	mkdirSync(dir, { recursive: true });
	const tmp = join(dir, `${key}.${process.pid}.tmp`);
	writeFileSync(tmp, JSON.stringify(choice, null, '\t'));
	renameSync(tmp, join(dir, `${key}.json`));
}

/**
 * Decides between KVM and TCG by booting a real guest under KVM: /dev/kvm can
 * exist and open fine while guests die with "KVM internal error ... emulation
 * failure" (as on these CI machines).  A guest counts as KVM only if it
 * boots, answers ssh and runs on kvm-clock.  LARVAL_ACCEL=kvm|tcg overrides.
 */
export async function chooseAccelerator(probe: Omit<BootOptions, 'accel' | 'name'>): Promise<AccelChoice> {
	const forced = forcedAccelerator();
	if (forced) return { accel: forced, reason: `LARVAL_ACCEL=${forced}` };
	const unusable = kvmUsable();
	if (unusable) return { accel: 'tcg', reason: unusable };

	const cacheDir = join(cacheRoot(), 'accel-probe');
	const key = await probeCacheKeyHere(probe.bzImage);
	const cached = cachedChoice(cacheDir, key);
	if (cached) return { accel: cached.accel, reason: `${cached.reason} (probed earlier this host boot, this kernel)` };
	progress('probing KVM with a real guest boot');
	let choice: AccelChoice;
	// Only a verdict about KVM is kept: a guest that died or hung for another reason says nothing about it.
	let conclusive = true;
	let vm: Vm | undefined;
	try {
		vm = await Vm.boot({ ...probe, name: 'kvm-probe', accel: 'kvm', bootTimeoutMs: 30_000 });
		const clock = (await vm.run('cat /sys/devices/system/clocksource/clocksource0/current_clocksource', { timeoutMs: 10_000 })).trim();
		choice = clock === 'kvm-clock'
			? { accel: 'kvm', reason: 'probe guest booted on kvm-clock' }
			: { accel: 'tcg', reason: `probe guest booted but its clocksource is ${clock}, not kvm-clock` };
	} catch (e) {
		const msg = (e as Error).message.split('\n')[0] ?? '';
		const internal = /KVM internal error|emulation failure|failed to set MSR|KVM_SET/.exec(
			`${(e as Error).message}\n${(e as { detail?: string }).detail ?? ''}`,
		);
		choice = { accel: 'tcg', reason: `KVM probe guest failed${internal ? ` (${internal[0]})` : ''}: ${msg}` };
		conclusive = internal !== null;
	} finally {
		await vm?.stop();
	}
	if (conclusive) recordChoice(cacheDir, key, choice);
	return choice;
}
