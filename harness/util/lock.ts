import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * Serialises builds of one cache entry across processes (vitest workers,
 * two terminals).  mkdir is atomic; a lock whose owner died is taken over.
 */
export async function withLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
	const lock = `${dir}.lock`;
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		try {
			mkdirSync(lock);
			writeFileSync(join(lock, 'pid'), String(process.pid));
			break;
		} catch (e) {
			if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
			let owner = NaN;
			try {
				owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
			} catch {
				// The owner is between mkdir and writing its pid.
			}
			if (Number.isInteger(owner) && !pidAlive(owner)) {
				rmSync(lock, { recursive: true, force: true });
				continue;
			}
			if (Date.now() > deadline) {
				throw new LarvalError(`timed out waiting for ${lock} (held by pid ${owner})`);
			}
			await sleep(500);
		}
	}
	try {
		return await fn();
	} finally {
		rmSync(lock, { recursive: true, force: true });
	}
}
