import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deviceTeardownScript, deviceTeardownViolations, parseDeviceTeardown } from '../../harness/suite/device-teardown.js';
import { scanConsole } from '../../harness/vm/console-scan.js';

/**
 * What the device teardown scenario printed in real guests
 * (tests/fixtures/record-scenario.ts): the series as it stands, both
 * variants.  The series up to 0011, with the xfrm interface moved to
 * another namespace, left its packets held after the interface was
 * deleted, and at the acquire's expiry icmp6_send() read the freed
 * device: 5 of 6 runs oopsed there (the console below), and the one that
 * lived showed 0 of 4 held packets dropped at the deletion and 4 failed
 * at the expiry.
 */
const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

describe('the device teardown scenario', () => {
	it('passes the series: the held packets go with the device, at once', () => {
		for (const name of ['device-teardown-forwarded-patched.txt', 'device-teardown-xfrmi-patched.txt']) {
			const r = parseDeviceTeardown(fixture(name));
			expect(r.before.XfrmOutLarvalHeld, name).toBe(4);
			expect(r.afterDelete.XfrmOutLarvalFailed, name).toBe(4);
			expect(deviceTeardownViolations(r), name).toEqual([]);
		}
	});

	it("reads the series up to 0011's oops at the expiry, in the failure work's icmp6_send(), as one", () => {
		const f = scanConsole(fixture('console-device-teardown-xfrmi-0001-0011.txt'));
		expect(f.map((x) => x.kind)).toContain('oops');
		const report = f.map((x) => x.report).join('\n');
		expect(report).toMatch(/RIP: 0010:icmp6_send/);
		expect(report).toMatch(/xfrm_larval_fail_work/);
	});

	it('calls a run that held nothing a run that shows nothing', () => {
		const none = fixture('device-teardown-xfrmi-patched.txt').replace(/(=== before\n[\s\S]*?XfrmOutLarvalHeld\s+)\d+/, '$10');
		expect(deviceTeardownViolations(parseDeviceTeardown(none)).join('\n')).toMatch(/held 0 packets before the deletion/);
	});

	it('bounds the deletion and deletes the interface where it was moved to', () => {
		expect(deviceTeardownScript({ variant: 'xfrmi-elsewhere', acqExpiresS: 2 })).toMatch(/timeout 60 \/usr\/bin\/ip -n ldt-c link del ldtxi/);
		expect(deviceTeardownScript({ variant: 'forwarded', acqExpiresS: 2 })).toMatch(/timeout 60 \/usr\/bin\/ip -n ldt-g link del ldtgin/);
	});
});
