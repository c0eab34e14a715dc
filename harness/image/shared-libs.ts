import { execa } from 'execa';
import { LarvalError } from '../util/errors.js';

/**
 * Parses `ldd` output into the absolute paths the dynamic loader will open.
 * "not a dynamic executable" (static binaries) yields an empty list.
 */
export function parseLdd(output: string): string[] {
	const libs: string[] = [];
	for (const line of output.split('\n')) {
		const arrow = /=>\s+(\/\S+)/.exec(line);
		if (arrow) {
			libs.push(arrow[1]!);
			continue;
		}
		const loader = /^\s*(\/\S+)\s+\(0x/.exec(line);
		if (loader) libs.push(loader[1]!);
		if (/=>\s+not found/.test(line)) throw new LarvalError(`ldd: missing library: ${line.trim()}`);
	}
	return libs;
}

export async function sharedLibraries(binary: string): Promise<string[]> {
	const r = await execa('ldd', [binary], { reject: false, all: true });
	if (/not a dynamic executable|statically linked/.test(r.all ?? '')) return [];
	if (r.exitCode !== 0) throw new LarvalError(`ldd ${binary} failed`, r.all);
	return parseLdd(r.stdout);
}
