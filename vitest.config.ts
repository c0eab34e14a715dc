import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure functions, seconds) and `vm` (real guests under
// QEMU).  VM files run one at a time: each boots guests that already load
// both cores under TCG, and parallel boots only make every timeout tighter.
export default defineConfig({
	test: {
		projects: [
			{
				test: {
					name: 'unit',
					include: ['tests/unit/**/*.test.ts'],
					testTimeout: 10_000,
				},
			},
			{
				test: {
					name: 'vm',
					include: ['tests/vm/**/*.test.ts'],
					fileParallelism: false,
					testTimeout: 5 * 60_000,
					hookTimeout: 45 * 60_000,
					// A VM test that cannot run must fail, never pass by skipping; a file that boots no guest fails.
					allowOnly: false,
					setupFiles: ['tests/vm/guard.ts'],
				},
			},
		],
	},
});
