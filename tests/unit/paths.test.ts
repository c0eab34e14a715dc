import { describe, expect, it } from 'vitest';
import { pathComponent } from '../../harness/util/paths.js';

describe('pathComponent', () => {
	it('keeps a kernel name that is already one component', () => {
		expect(pathComponent('patched-6.12')).toBe('patched-6.12');
	});
	it('makes a bzImage path one component, so results/ gains no nested directories', () => {
		const c = pathComponent('/root/.cache/larval/kernels/race-47a1/build/arch/x86/boot/bzImage');
		expect(c).not.toContain('/');
		expect(c).toBe('_root_.cache_larval_kernels_race-47a1_build_arch_x86_boot_bzImage');
	});
});
