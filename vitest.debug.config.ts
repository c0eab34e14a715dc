import { defineConfig } from 'vitest/config';

// `make test-debug`: the series on the debug kernel (KASAN, lockdep,
// kmemleak; kernel-patches/config/debug.config).  Kept out of `make test`:
// the debug build alone takes ~13 min cold, and CI has 90 min in all.
export default defineConfig({
	test: {
		include: ['tests/debug/**/*.test.ts'],
		fileParallelism: false,
		testTimeout: 5 * 60_000,
		hookTimeout: 45 * 60_000,
		allowOnly: false,
	},
});
