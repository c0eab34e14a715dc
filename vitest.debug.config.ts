import { defineConfig } from 'vitest/config';

// `make test-debug`: the whole series on the debug kernel (KASAN, lockdep,
// kmemleak; kernel-patches/config/debug.config).  `make test` runs only its
// faults and leak scan (tests/vm/debug-kernel-faults.test.ts): the rest
// does not fit beside the other suites in CI's 90 minutes.
export default defineConfig({
	test: {
		include: ['tests/debug/**/*.test.ts'],
		fileParallelism: false,
		testTimeout: 5 * 60_000,
		hookTimeout: 45 * 60_000,
		allowOnly: false,
		// A file that boots no guest fails (tests/vm/guard.ts).
		setupFiles: ['tests/vm/guard.ts'],
	},
});
