import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A setup file of the suites that boot guests (vitest.config.ts's `vm`
 * project, vitest.debug.config.ts): a test file that boots no guest fails,
 * because a suite of real guests that ran none proves nothing (a count of
 * 0, a filter, a skip).  Every QEMU the harness starts, in the test's
 * process or in a CLI it runs, is written to LARVAL_GUEST_LEDGER
 * (harness/vm/reaper.ts).  A file that means to boot none says why with
 * bootsNoGuest().
 */
let noGuestBecause: string | null = null;
let dir = '';

export function bootsNoGuest(reason: string): void {
	noGuestBecause = reason;
}

/** The guests booted so far by this file (the ledger exists once the first is written to it). */
export function guestsBooted(): number {
	try {
		return readFileSync(join(dir, 'ledger'), 'utf8').split('\n').filter(Boolean).length;
	} catch {
		return 0;
	}
}

beforeAll(() => {
	dir = mkdtempSync(join(tmpdir(), 'larval-guests-'));
	process.env.LARVAL_GUEST_LEDGER = join(dir, 'ledger');
});

afterAll(() => {
	const n = guestsBooted();
	rmSync(dir, { recursive: true, force: true });
	delete process.env.LARVAL_GUEST_LEDGER;
	if (n === 0 && noGuestBecause === null) throw new Error('this VM test file booted no guest: it proved nothing (a repeat count of 0, a filter that matched nothing, a skip?)');
});
