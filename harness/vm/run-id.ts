import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';

/** What a run id may hold: it goes into QEMU's -name and into the pgrep pattern that finds the run's guests. */
const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * This run's id: LARVAL_RUN_ID (.ci/run sets one), or one made up here and
 * put into the environment, so that the CLIs a test starts belong to the
 * same run.  Every guest of the run is named after it (guestName).
 */
export function runId(env: NodeJS.ProcessEnv = process.env): string {
	const id = env.LARVAL_RUN_ID || (env.LARVAL_RUN_ID = `${process.pid}-${randomBytes(3).toString('hex')}`);
	if (!RUN_ID.test(id)) throw new LarvalError(`LARVAL_RUN_ID must be 1-64 letters, digits, '_' or '-', not "${id}"`);
	return id;
}

/** QEMU's -name of a guest of run @id. */
export function guestName(id: string): string {
	if (!RUN_ID.test(id)) throw new LarvalError(`invalid run id "${id}"`);
	return `larval-${id}`;
}

/**
 * The pids of the QEMUs of run @id (and of runs named `ID-...`, which a
 * test starts as parts of it), found by their -name: never anyone else's
 * QEMU.  The pattern is .ci/reap-guests's.
 */
export async function guestPids(id: string = runId()): Promise<number[]> {
	const r = await execa('pgrep', ['-f', '--', `-name ${guestName(id)}([- ]|$)`], { reject: false });
	if (r.exitCode !== 0 && r.exitCode !== 1) throw new LarvalError(`pgrep failed (status ${r.exitCode}): ${r.stderr}`);
	return r.stdout.split('\n').filter(Boolean).map(Number);
}
