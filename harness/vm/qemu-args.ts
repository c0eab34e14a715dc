import { DEFAULT_CPUS, MAX_CPUS } from './machine.js';
import { guestName } from './run-id.js';

export type Accelerator = 'kvm' | 'tcg';

export interface QemuConfig {
	kernel: string;
	initrd: string;
	accel: Accelerator;
	/** Host port on 127.0.0.1 forwarded to the guest's sshd. */
	sshPort: number;
	memoryMiB?: number;
	/** vCPUs; default 2 (DEFAULT_CPUS). */
	cpus?: number;
	/** Extra kernel command-line words, after the harness's own. */
	append?: readonly string[];
	/** PCI interrupts routed by ACPI (no pci=noacpi), for kernels that need it to see their other CPUs (kernelCommandLine). */
	acpiPciIrqs?: boolean;
	/** The harness run the guest belongs to: its QEMU is named larval-RUN_ID (run-id.ts) so that the run finds its own. */
	runId: string;
	/**
	 * QEMU's instruction counter (ICOUNT): the guest's clocks and TSC advance
	 * by one nanosecond per instruction, never with the host's time, so a
	 * TSC difference in the guest is an instruction count.  TCG only, one
	 * vCPU, single-threaded.
	 */
	icount?: boolean;
}

/**
 * shift=0: one instruction is one virtual nanosecond (the TSC then counts
 * instructions exactly); sleep=off: an idle guest's clock jumps to its next
 * timer instead of waiting for the host's, so a sleep costs no host time
 * and no instruction is ever paced by the host; align=off: never slowed to
 * the host's clock.
 */
export const ICOUNT = 'shift=0,sleep=off,align=off';

/**
 * TCG's -accel value: one host thread per vCPU when there are several, so
 * two vCPUs really run at once and the guest's races happen; one thread
 * for a single vCPU.  An instruction clock (-icount, deterministic timing)
 * needs single-threaded TCG.
 */
export function tcgAccel(c: Pick<QemuConfig, 'cpus' | 'icount'>): string {
	if (c.icount) return 'tcg,thread=single';
	return (c.cpus ?? DEFAULT_CPUS) > 1 ? 'tcg,thread=multi' : 'tcg';
}

/**
 * Kernel command line: console on the first serial port, and a panic ends the
 * VM at once.  pci=noacpi routes PCI interrupts from the BIOS table: under TCG
 * the ACPI interpreter took ~0.2 s per virtio device to enable its link.  It
 * also makes the kernel skip the I/O APICs of ACPI's MADT, so a kernel
 * without X86_MPPARSE (Debian's) finds no SMP configuration and runs one
 * CPU: @opts.acpiPciIrqs leaves it out.
 */
export function kernelCommandLine(extra: readonly string[] = [], opts: { acpiPciIrqs?: boolean } = {}): string {
	return ['console=ttyS0,115200', 'panic=-1', 'printk.time=1', ...(opts.acpiPciIrqs ? [] : ['pci=noacpi']), ...extra].join(' ');
}

/**
 * QEMU's argument vector for one guest.  Pure, so the choices are unit-tested:
 * no defaults devices or user config (reproducible across hosts), the serial
 * console on stdout for live scanning, -no-reboot so a panic or `reboot -f`
 * ends the process, and user-mode networking restricted to the ssh forward
 * so no guest packet can reach the host's networks.
 */
export function qemuArgs(c: QemuConfig): string[] {
	if (!Number.isInteger(c.sshPort) || c.sshPort <= 0 || c.sshPort > 65535) {
		throw new Error(`invalid ssh port ${c.sshPort}`);
	}
	const cpus = c.cpus ?? DEFAULT_CPUS;
	if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS) throw new Error(`invalid vCPU count ${cpus}`);
	if (c.icount && (c.accel !== 'tcg' || cpus !== 1)) throw new Error(`-icount needs TCG and one vCPU, not ${c.accel} with ${cpus}`);
	const args = [
		'-name', guestName(c.runId),
		'-nodefaults',
		'-no-user-config',
		'-display', 'none',
		'-monitor', 'none',
		'-no-reboot',
		'-machine', 'pc',
		'-accel', c.accel === 'kvm' ? 'kvm' : tcgAccel(c),
		'-cpu', c.accel === 'kvm' ? 'host' : 'max',
		'-m', String(c.memoryMiB ?? 512),
		'-smp', String(cpus),
		'-chardev', 'stdio,id=console,signal=off',
		'-serial', 'chardev:console',
		'-kernel', c.kernel,
		'-initrd', c.initrd,
		'-append', kernelCommandLine(c.append, { acpiPciIrqs: c.acpiPciIrqs }),
		'-netdev', `user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${c.sshPort}-:22`,
		'-device', 'virtio-net-pci,netdev=net0',
		'-device', 'virtio-rng-pci',
		...(c.icount ? ['-icount', ICOUNT] : []),
	];
	return args;
}

/**
 * The command that starts QEMU with @args: under `setpriv --pdeathsig KILL`
 * (util-linux), so the kernel kills the guest when the harness that started
 * it dies, even by SIGKILL, when no exit handler of the harness runs.
 */
export function ownedCommand(qemu: string, args: readonly string[]): [string, string[]] {
	return ['setpriv', ['--pdeathsig', 'KILL', '--', qemu, ...args]];
}
