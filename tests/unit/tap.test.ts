import { describe, expect, it } from 'vitest';
import { parseTap } from '../../harness/probe/tap.js';

describe('parseTap', () => {
	it('types points and their YAML diagnostics', () => {
		const s = parseTap(
			[
				'TAP version 14',
				'ok 1 - connect',
				'  ---',
				'  ret: -1',
				'  errno_name: "EINPROGRESS"',
				'  rtt_ms: [0.512, 1.02]',
				'  duration_ms: 1146.250',
				'  ...',
				'ok 2 - send 1 # SKIP no peer',
				'# a comment',
				'1..2',
			].join('\n'),
		);
		expect(s.complete).toBe(true);
		expect(s.points).toHaveLength(2);
		expect(s.points[0]).toMatchObject({ id: 1, ok: true, name: 'connect', skip: false });
		expect(s.points[0]!.diag).toEqual({ ret: -1, errno_name: 'EINPROGRESS', rtt_ms: [0.512, 1.02], duration_ms: 1146.25 });
		expect(s.points[1]!.skip).toBe('no peer');
		expect(s.comments).toContain('a comment');
	});

	it('keeps what a program printed before it died, marked incomplete', () => {
		const s = parseTap('TAP version 14\nok 1 - socket\nok 2 - connect\n');
		expect(s.complete).toBe(false);
		expect(s.planned).toBeNull();
		expect(s.points.map((p) => p.name)).toEqual(['socket', 'connect']);
	});

	it('reports a bail-out', () => {
		const s = parseTap('TAP version 14\nok 1 - socket\nBail out! netlink bind failed\n');
		expect(s.bailout).toBe('netlink bind failed');
		expect(s.complete).toBe(false);
	});

	it('marks a plan that does not match the points as incomplete', () => {
		expect(parseTap('TAP version 14\n1..3\nok 1 - a\n').complete).toBe(false);
	});
});
