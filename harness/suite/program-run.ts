import type { TapStream } from '../probe/tap.js';
import type { ConsoleFinding } from '../vm/console-scan.js';
import type { Vm } from '../vm/vm.js';

/**
 * What the scenarios that run one long guest program (larval-fuzz,
 * larval-stress) share: how the program ended as their results record
 * it, what their verdicts read, and what the guest says about a program
 * that stopped answering.
 */

/** How the program ended, and what the guest and its console said around it. */
export interface ProgramRun {
	exitStatus: number | null;
	findings: ConsoleFinding[];
	/** Why the run counts as hung (past its bound, silent, or the guest not answering); null when it finished. */
	hang: string | null;
	/** What the guest said about the stuck program (its threads' kernel stacks), when it still answered. */
	hangDiagnosis: string;
	/** The guest died under the program (panic, reboot): the console findings say why. */
	died: string | null;
	/** Everything that fails the run; empty: clean. */
	problems: string[];
	tapText: string;
	stderr: string;
	consoleLog: string | null;
	/** Where the run's output was kept (failed runs). */
	artifacts: string | null;
}

/** What a verdict reads of a run: the parsed TAP beside how the program ended. */
export type ProgramEnd = Pick<ProgramRun, 'exitStatus' | 'stderr' | 'hang' | 'died'> & {
	tap: TapStream;
	findings: readonly ConsoleFinding[];
};

/**
 * After an outer time-out: where each thread of @program sleeps (wait
 * channel and kernel stack), the blocked tasks on the console (sysrq w),
 * and the last @tail.lines lines of the program's own record.
 */
export async function diagnoseHang(vm: Vm, program: string, tail: { what: string; file: string; lines: number }, timeScale: number): Promise<{ answered: boolean; text: string }> {
	const script = [
		`for p in $(pidof ${program}); do for t in /proc/$p/task/*; do echo "== ${program} $p task \${t##*/}: $(cat $t/wchan 2>/dev/null)"; cat $t/stack 2>&1; done; done`,
		'echo w > /proc/sysrq-trigger 2>/dev/null',
		`echo "== ${tail.what}"; tail -n ${tail.lines} ${tail.file} 2>&1`,
	].join('\n');
	try {
		const r = await vm.exec(script, { timeoutMs: 30_000 * timeScale, keepOnTimeout: true });
		return { answered: true, text: r.stdout + r.stderr };
	} catch (e) {
		return { answered: false, text: (e as Error).message };
	}
}
