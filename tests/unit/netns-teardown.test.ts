import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTeardown, SLEEPERS, teardownScript, teardownViolations } from '../../harness/suite/netns-teardown.js';

const SPEC = { acqExpiresS: 2 };
/** What the scenario printed on the patched kernel (6.12.117 + 0001-0016; tests/fixtures/record-scenario.ts). */
const PATCHED = readFileSync(new URL('../fixtures/netns-teardown-patched.txt', import.meta.url), 'utf8');

describe('the netns teardown scenario', () => {
	it('reads a patched run as documented', () => {
		const r = parseTeardown(PATCHED);
		expect(r.sleepers).toHaveLength(SLEEPERS.length);
		expect(r.sleepers.every((s) => s.aliveAfterDelete && s.exitS !== null)).toBe(true);
		expect(r.sleepers.filter((s) => !s.killed).map((s) => s.waitErrno)).toEqual(['EHOSTUNREACH', 'EHOSTUNREACH', 'EHOSTUNREACH', 'EHOSTUNREACH']);
		expect(r.teardownS).not.toBeNull();
		expect(teardownViolations(r, SPEC)).toEqual([]);
	});

	it('calls a sleeper that the deletion woke, and a namespace that never went, violations', () => {
		const woken = PATCHED.replace(/=== alive-after-delete\n0\n/, '=== alive-after-delete\n');
		expect(teardownViolations(parseTeardown(woken), SPEC).join('\n')).toMatch(/sleeper 0 \(udp, killed\) returned when the name was deleted/);
		const pinned = PATCHED.replace(/=== teardown\n[0-9.]+\n/, '=== teardown\nnever\n');
		expect(teardownViolations(parseTeardown(pinned), SPEC)).toContain('the namespace was never torn down after its last sleeper');
	});

	it('fails when nothing slept on the acquire before the deletion', () => {
		const idle = PATCHED.replace(/XfrmOutLarvalWait(\s+)\d+/, 'XfrmOutLarvalWait$10');
		expect(teardownViolations(parseTeardown(idle), SPEC).join('\n')).toMatch(/0 socket calls asleep/);
	});

	it('kills only the sleepers it says it kills', () => {
		const script = teardownScript(SPEC);
		const killed = SLEEPERS.flatMap((s, i) => (s.killed ? [i] : []));
		expect([...script.matchAll(/^kill -9 \$p(\d+)$/gm)].map((m) => Number(m[1]))).toEqual(killed);
	});
});
