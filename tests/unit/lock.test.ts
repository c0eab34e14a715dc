import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LockOwner, newOwner, readOwner, release, tryCreate, tryTakeOver, withLock } from '../../harness/util/lock.js';

let root = '';
afterEach(() => {
	if (root) rmSync(root, { recursive: true, force: true });
	root = '';
});

/** A pid that was a process and is not any more. */
function deadPid(): number {
	return Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());
}

/** A lock left behind by a process that died holding it. */
function staleLock(): { lock: string; dead: LockOwner } {
	root = mkdtempSync(join(tmpdir(), 'larval-lock-'));
	const lock = join(root, 'entry.lock');
	const dead = { pid: deadPid(), token: 'dead-holder' };
	expect(tryCreate(lock, dead)).toBe(true);
	return { lock, dead };
}

const other = (pid: number): LockOwner => ({ pid, token: `t-${pid}` });

describe('the cache lock', () => {
	it('lets one of two processes that saw the same dead owner take over, and the other cannot undo it', () => {
		const { lock, dead } = staleLock();
		// A and B both read the dead owner; A takes over first.  (Before, B then deleted A's lock and took it too.)
		const [a, b] = [other(1001), other(1002)];
		expect(readOwner(lock)).toEqual(dead);
		expect(tryTakeOver(lock, dead, a)).toBe(true);
		expect(tryTakeOver(lock, dead, b)).toBe(false);
		expect(tryCreate(lock, b)).toBe(false);
		expect(readOwner(lock)).toEqual(a);
	});

	it('does not let an owner seen dead long ago take the lock from whoever holds it now', () => {
		const { lock, dead } = staleLock();
		const [a, c, late] = [other(1001), other(1003), other(1004)];
		expect(tryTakeOver(lock, dead, a)).toBe(true);
		release(lock, a);
		expect(tryCreate(lock, c)).toBe(true);
		// `late` read the dead owner before all that, and acts now.
		expect(tryTakeOver(lock, dead, late)).toBe(false);
		expect(readOwner(lock)).toEqual(c);
	});

	it('releases only its own holding', () => {
		const { lock } = staleLock();
		release(lock, other(1005));
		expect(existsSync(lock)).toBe(true);
	});

	it('withLock takes over a dead owner\'s lock, runs once at a time, and leaves nothing behind', async () => {
		const { lock } = staleLock();
		const dir = lock.slice(0, -'.lock'.length);
		let inside = 0;
		let most = 0;
		await Promise.all([1, 2, 3].map(() => withLock(dir, 10_000, async () => {
			most = Math.max(most, ++inside);
			await new Promise((r) => setTimeout(r, 20));
			inside--;
		})));
		expect(most).toBe(1);
		expect(readdirSync(root)).toEqual([]);
	});

	it('waits for a live owner and names it when it times out', async () => {
		root = mkdtempSync(join(tmpdir(), 'larval-lock-'));
		const dir = join(root, 'entry');
		expect(tryCreate(`${dir}.lock`, newOwner())).toBe(true);
		await expect(withLock(dir, 600, async () => 1)).rejects.toThrow(new RegExp(`held by pid ${process.pid}`));
	});

	it("reads an older harness's lock (the pid alone) and takes it over when that pid is dead", async () => {
		root = mkdtempSync(join(tmpdir(), 'larval-lock-'));
		const dir = join(root, 'entry');
		mkdirSync(`${dir}.lock`);
		const pid = deadPid();
		writeFileSync(join(`${dir}.lock`, 'pid'), String(pid));
		expect(readOwner(`${dir}.lock`)).toEqual({ pid, token: `pid-${pid}` });
		expect(await withLock(dir, 5000, async () => 'ran')).toBe('ran');
	});
});
