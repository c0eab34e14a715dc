import { describe, expect, it } from 'vitest';
import { kernelCommandLine, ownedCommand, qemuArgs } from '../../harness/vm/qemu-args.js';

const base = { kernel: '/k/bzImage', initrd: '/i/initrd.cpio.gz', sshPort: 40022, runId: 'ci-123-abc' } as const;

function optionValue(args: string[], name: string): string[] {
	return args.flatMap((a, i) => (a === name ? [args[i + 1]!] : []));
}

describe('qemuArgs', () => {
	it('uses TCG with -cpu max, and KVM with -cpu host', () => {
		const tcg = qemuArgs({ ...base, accel: 'tcg' });
		expect(optionValue(tcg, '-accel')).toEqual(['tcg,thread=multi']);
		expect(optionValue(tcg, '-cpu')).toEqual(['max']);
		const kvm = qemuArgs({ ...base, accel: 'kvm' });
		expect(optionValue(kvm, '-accel')).toEqual(['kvm']);
		expect(optionValue(kvm, '-cpu')).toEqual(['host']);
	});

	it('ends the VM on reboot and panic', () => {
		const a = qemuArgs({ ...base, accel: 'tcg' });
		expect(a).toContain('-no-reboot');
		expect(optionValue(a, '-append')[0]).toMatch(/(^| )panic=-1( |$)/);
	});

	it('forwards only ssh, on loopback, and keeps the guest off the host network', () => {
		const netdev = optionValue(qemuArgs({ ...base, accel: 'tcg' }), '-netdev');
		expect(netdev).toEqual(['user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22']);
	});

	it('puts the serial console on stdout and takes no defaults', () => {
		const a = qemuArgs({ ...base, accel: 'tcg' });
		expect(a).toContain('-nodefaults');
		expect(optionValue(a, '-serial')).toEqual(['chardev:console']);
		expect(optionValue(a, '-chardev')[0]).toMatch(/^stdio,id=console/);
		expect(optionValue(a, '-append')[0]).toMatch(/console=ttyS0/);
	});

	it('passes kernel, initrd, memory, cpus and extra command-line words through', () => {
		const a = qemuArgs({ ...base, accel: 'tcg', memoryMiB: 1024, cpus: 2, append: ['larval.x=1'] });
		expect(optionValue(a, '-kernel')).toEqual(['/k/bzImage']);
		expect(optionValue(a, '-initrd')).toEqual(['/i/initrd.cpio.gz']);
		expect(optionValue(a, '-m')).toEqual(['1024']);
		expect(optionValue(a, '-smp')).toEqual(['2']);
		expect(optionValue(a, '-append')[0]!.endsWith(' larval.x=1')).toBe(true);
	});

	it('boots 2 vCPUs by default, on one TCG thread each; one vCPU on one thread', () => {
		const two = qemuArgs({ ...base, accel: 'tcg' });
		expect(optionValue(two, '-smp')).toEqual(['2']);
		expect(optionValue(two, '-accel')).toEqual(['tcg,thread=multi']);
		const four = qemuArgs({ ...base, accel: 'tcg', cpus: 4 });
		expect(optionValue(four, '-smp')).toEqual(['4']);
		expect(optionValue(four, '-accel')).toEqual(['tcg,thread=multi']);
		const one = qemuArgs({ ...base, accel: 'tcg', cpus: 1 });
		expect(optionValue(one, '-smp')).toEqual(['1']);
		expect(optionValue(one, '-accel')).toEqual(['tcg']);
		expect(optionValue(qemuArgs({ ...base, accel: 'kvm', cpus: 2 }), '-accel')).toEqual(['kvm']);
	});

	it('names the guest after its run, the name its run finds it by, and refuses a name pgrep or -name would misread', () => {
		expect(optionValue(qemuArgs({ ...base, accel: 'tcg' }), '-name')).toEqual(['larval-ci-123-abc']);
		for (const runId of ['', 'a,process=x', 'a b', 'a.*']) expect(() => qemuArgs({ ...base, accel: 'tcg', runId }), runId).toThrow(/run id/);
	});

	it('starts QEMU under a parent-death signal, so a killed harness takes its guests with it', () => {
		expect(ownedCommand('qemu-system-x86_64', ['-m', '512'])).toEqual(['setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', '-m', '512']]);
	});

	it('rejects a bad port or vCPU count instead of letting QEMU fail obscurely', () => {
		expect(() => qemuArgs({ ...base, accel: 'tcg', sshPort: 0 })).toThrow(/port/);
		expect(() => qemuArgs({ ...base, accel: 'tcg', sshPort: 70000 })).toThrow(/port/);
		expect(() => qemuArgs({ ...base, accel: 'tcg', cpus: 0 })).toThrow(/vCPU/);
		expect(() => qemuArgs({ ...base, accel: 'tcg', cpus: 9 })).toThrow(/vCPU/);
		expect(() => qemuArgs({ ...base, accel: 'tcg', cpus: 1.5 })).toThrow(/vCPU/);
	});

	it('builds the command line in a stable order', () => {
		expect(kernelCommandLine()).toBe('console=ttyS0,115200 panic=-1 printk.time=1 pci=noacpi');
		// A kernel without X86_MPPARSE (Debian's) needs ACPI's interrupt routing to bring up its other vCPUs.
		expect(kernelCommandLine(['quiet'], { acpiPciIrqs: true })).toBe('console=ttyS0,115200 panic=-1 printk.time=1 quiet');
		expect(optionValue(qemuArgs({ ...base, accel: 'tcg', acpiPciIrqs: true }), '-append')[0]).not.toMatch(/pci=noacpi/);
	});
});
