import { appendFileSync } from 'node:fs';

/**
 * Every QEMU the harness starts is registered here, so that nothing outlives
 * the run: a normal exit, an uncaught error, Ctrl-C or SIGTERM all end them.
 * SIGKILL is the right signal: the guest holds nothing worth flushing (the
 * console is captured on the host as it is written).
 */
const live = new Set<number>();
let installed = false;

function killAll(): void {
	for (const pid of live) {
		try {
			process.kill(pid, 'SIGKILL');
		} catch {
			// Already gone.
		}
	}
	live.clear();
}

function install(): void {
	if (installed) return;
	installed = true;
	process.once('exit', killAll);
	for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
		process.once(sig, () => {
			killAll();
			// Re-raise with the default action so the exit status tells the truth.
			process.kill(process.pid, sig);
		});
	}
}

export function registerVmProcess(pid: number): void {
	install();
	live.add(pid);
	// The VM test suites count the guests each file boots, in this process and in the CLIs it starts (tests/vm/guard.ts).
	const ledger = process.env.LARVAL_GUEST_LEDGER;
	if (ledger) appendFileSync(ledger, `${pid}\n`);
}

export function unregisterVmProcess(pid: number): void {
	live.delete(pid);
}
