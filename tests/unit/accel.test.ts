import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cachedChoice, probeCacheKey, recordChoice } from '../../harness/vm/accel.js';

let dir = '';
afterEach(() => {
	if (dir) rmSync(dir, { recursive: true, force: true });
	dir = '';
});

describe('the KVM probe cache', () => {
	const host = { bootId: '3f1e0c2a-7b7e-4c55-9a51-6f0d0c1e2b3a', qemuVersion: 'QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)' };
	const good = Buffer.from('a bzImage that boots');
	const broken = Buffer.from('a bzImage that panics at boot');

	it('keys a verdict by the kernel booted, the host boot and QEMU', () => {
		const key = probeCacheKey({ ...host, kernel: good });
		expect(probeCacheKey({ ...host, kernel: Buffer.from(good) })).toBe(key);
		expect(probeCacheKey({ ...host, kernel: broken })).not.toBe(key);
		expect(probeCacheKey({ ...host, bootId: 'another boot', kernel: good })).not.toBe(key);
		expect(probeCacheKey({ ...host, qemuVersion: 'QEMU emulator version 8.2.2', kernel: good })).not.toBe(key);
	});

	it("does not give a broken kernel's verdict to any other kernel", () => {
		dir = mkdtempSync(join(tmpdir(), 'larval-accel-'));
		const brokenKey = probeCacheKey({ ...host, kernel: broken });
		recordChoice(dir, brokenKey, { accel: 'tcg', reason: 'KVM probe guest failed: guest died during boot' });
		expect(cachedChoice(dir, probeCacheKey({ ...host, kernel: good }))).toBeNull();
		expect(cachedChoice(dir, brokenKey)).toEqual({ accel: 'tcg', reason: 'KVM probe guest failed: guest died during boot' });
	});
});
