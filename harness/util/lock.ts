import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LarvalError } from './errors.js';

function pidAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (e) {
		return (e as NodeJS.ErrnoException).code === 'EPERM';
	}
}

/** Who holds a lock: a pid, and a token naming this one holding (a pid alone can be taken twice, or reused). */
export interface LockOwner {
	pid: number;
	token: string;
}

const OWNER = 'pid';

export function newOwner(): LockOwner {
	return { pid: process.pid, token: randomUUID() };
}

/** The lock's owner, or null when there is no lock (or, from an older harness, no pid yet). */
export function readOwner(lock: string): LockOwner | null {
	let text: string;
	try {
		text = readFileSync(join(lock, OWNER), 'utf8');
	} catch {
		return null;
	}
	const [pid, token] = text.trim().split(' ');
	const n = Number(pid);
	// An older harness wrote the pid alone.
	return Number.isInteger(n) && n > 0 ? { pid: n, token: token ?? `pid-${n}` } : null;
}

function ownerText(o: LockOwner): string {
	return `${o.pid} ${o.token}`;
}

/** Writes the owner file at once (a reader sees the old owner or the new one, never a partial file). */
function writeOwner(dir: string, o: LockOwner): void {
	const tmp = join(dir, `${OWNER}.${o.token}`);
	writeFileSync(tmp, ownerText(o));
	renameSync(tmp, join(dir, OWNER));
}

/** Creates the lock, owner file inside, in one rename: a lock never exists without its owner. */
export function tryCreate(lock: string, me: LockOwner): boolean {
	const tmp = `${lock}.${me.token}.new`;
	mkdirSync(tmp);
	writeOwner(tmp, me);
	try {
		renameSync(tmp, lock);
		return true;
	} catch (e) {
		rmSync(tmp, { recursive: true, force: true });
		if (['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) return false;
		throw e;
	}
}

/**
 * Takes over the lock from @stale, an owner seen dead.  Each holding's
 * token names one takeover marker, which only one process can create, and
 * the owner must still be @stale after it is made: two processes that saw
 * the same dead owner cannot both win, and one that saw it long ago cannot
 * take the lock from whoever holds it now.  The lock is never deleted here.
 */
export function tryTakeOver(lock: string, stale: LockOwner, me: LockOwner): boolean {
	try {
		mkdirSync(join(lock, `takeover-${stale.token}`));
	} catch (e) {
		if (['EEXIST', 'ENOENT'].includes((e as NodeJS.ErrnoException).code ?? '')) return false;
		throw e;
	}
	if (readOwner(lock)?.token !== stale.token) return false;
	writeOwner(lock, me);
	return true;
}

/** Gives up the lock if @me holds it: renamed away first, so no one else's lock is ever half-deleted. */
export function release(lock: string, me: LockOwner): void {
	if (readOwner(lock)?.token !== me.token) return;
	const gone = `${lock}.${me.token}.released`;
	renameSync(lock, gone);
	rmSync(gone, { recursive: true, force: true });
}

/**
 * Serialises builds of one cache entry across processes (vitest workers,
 * two terminals).  A lock whose owner died is taken over (tryTakeOver).
 */
export async function withLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
	const lock = `${dir}.lock`;
	const me = newOwner();
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (tryCreate(lock, me)) break;
		const owner = readOwner(lock);
		if (owner && !pidAlive(owner.pid) && tryTakeOver(lock, owner, me)) break;
		if (Date.now() > deadline) {
			throw new LarvalError(`timed out waiting for ${lock} (held by pid ${owner?.pid ?? '?'})`);
		}
		await sleep(500);
	}
	try {
		return await fn();
	} finally {
		release(lock, me);
	}
}
