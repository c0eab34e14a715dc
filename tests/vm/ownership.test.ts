import { execa, type ResultPromise } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { guestPids, runId } from '../../harness/vm/run-id.js';

/**
 * Each harness run owns its guests and only them (issue #17, item 3): real
 * `larval exec` processes, each a run of its own (LARVAL_RUN_ID), booting
 * Debian's kernel side by side.  .ci/reap-guests ends one run's guests and
 * leaves the other's running; `kill -9` of a harness, which runs no exit
 * handler, still takes its QEMU along (the parent-death signal).
 */
describe('guests belong to the run that started them', () => {
	/** A `larval exec` of its own run, sleeping in a guest after saying "up". */
	function harness(part: string, seconds: number): { id: string; proc: ResultPromise<{ reject: false }> } {
		const id = `${runId()}-${part}`;
		const proc = execa('node', ['dist/harness/cli.js', 'exec', '--kernel', 'distro', '--timeout', String(seconds + 60), '--', 'sh', '-c', `echo up; sleep ${seconds}; echo done`], {
			reject: false,
			env: { LARVAL_RUN_ID: id, LARVAL_QUIET: '1' },
		});
		return { id, proc };
	}

	async function untilUp(h: ReturnType<typeof harness>): Promise<number> {
		let out = '';
		h.proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
		const deadline = Date.now() + 180_000;
		while (!/^up$/m.test(out)) {
			if (Date.now() > deadline || h.proc.exitCode !== null) throw new Error(`${h.id} did not come up: ${out}`);
			await sleep(200);
		}
		const pids = await guestPids(h.id);
		expect(pids, h.id).toHaveLength(1);
		return pids[0]!;
	}

	async function gone(id: string, withinMs: number): Promise<boolean> {
		const deadline = Date.now() + withinMs;
		while ((await guestPids(id)).length) {
			if (Date.now() > deadline) return false;
			await sleep(100);
		}
		return true;
	}

	it("a run's cleanup and a killed harness end their own guests and no one else's", async () => {
		// Long enough for the reap and a third boot beside it (30-45 s under TCG), not much longer: the test waits it out.
		const keep = harness('keep', 75);
		const reaped = harness('reaped', 240);
		const [keepPid] = await Promise.all([untilUp(keep), untilUp(reaped)]);

		// The CI cleanup of one run, while another run's guest is up.
		const reap = await execa('bash', ['.ci/reap-guests', reaped.id], { reject: false });
		expect(reap.exitCode, reap.stderr).toBe(1);
		expect(reap.stderr).toMatch(new RegExp(`-name larval-${reaped.id} `));
		expect(await gone(reaped.id, 5000)).toBe(true);
		expect((await reaped.proc).exitCode).toBe(255);
		expect(await guestPids(keep.id)).toEqual([keepPid]);

		// SIGKILL of a harness: no exit handler runs, the kernel's parent-death signal ends its QEMU.
		const killed = harness('killed', 240);
		await untilUp(killed);
		process.kill(killed.proc.pid!, 'SIGKILL');
		expect((await killed.proc).signal).toBe('SIGKILL');
		expect(await gone(killed.id, 5000)).toBe(true);
		expect(await guestPids(keep.id)).toEqual([keepPid]);

		const k = await keep.proc;
		expect(k.exitCode, k.stderr).toBe(0);
		expect(k.stdout).toMatch(/^done$/m);
		expect(await guestPids(keep.id)).toEqual([]);
	}, 6 * 60_000);
});
