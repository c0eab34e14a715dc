/**
 * One progress channel for the whole harness.  Progress goes to stderr so
 * that `larval exec` keeps the guest's stdout clean; LARVAL_QUIET=1 mutes it.
 */
export function progress(message: string): void {
	if (process.env.LARVAL_QUIET === '1') return;
	const t = new Date().toISOString().slice(11, 19);
	process.stderr.write(`[larval ${t}] ${message}\n`);
}
