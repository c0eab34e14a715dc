import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LarvalError, UsageError } from '../util/errors.js';

export interface ConfigOption {
	name: string;
	/** `y`, `m`, a number or a quoted string; `n` for "# CONFIG_X is not set". */
	value: string;
}

/** Parses a Kconfig fragment or a .config. */
export function parseConfig(text: string): Map<string, string> {
	const out = new Map<string, string>();
	for (const line of text.split('\n')) {
		const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
		if (set) {
			out.set(set[1]!, set[2]!);
			continue;
		}
		const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
		if (unset) out.set(unset[1]!, 'n');
	}
	return out;
}

/**
 * Options a fragment asked for that Kconfig silently dropped, usually for an
 * unmet dependency: a build that ignored them would test the wrong kernel.
 */
export function droppedOptions(wanted: Map<string, string>, got: Map<string, string>, folded: Readonly<Record<string, string>> = {}): ConfigOption[] {
	const dropped: ConfigOption[] = [];
	for (const [name, value] of wanted) {
		const actual = got.get(name) ?? 'n';
		// An option this tree's Kconfig no longer has, made part of one that is set (7.3: PROC_SYSCTL in SYSCTL).
		const into = folded[name];
		if (value === 'y' && into && got.get(into) === 'y' && !got.has(name)) continue;
		if (actual !== value) dropped.push({ name, value: `${value} (got ${actual})` });
	}
	return dropped;
}

/** The fragments for a config flavour: base.config always, then FLAVOUR.config. */
export function fragmentPaths(configDir: string, flavour: string): string[] {
	const files = readdirSync(configDir).filter((f) => f.endsWith('.config'));
	const wanted = ['base.config', ...(flavour === 'base' ? [] : [`${flavour}.config`])];
	for (const w of wanted) {
		if (files.includes(w)) continue;
		const why = `no config fragment ${w} in ${configDir} (have: ${files.join(', ')})`;
		// A flavour nobody wrote is a bad --config; base.config missing is a broken checkout.
		throw w === 'base.config' ? new LarvalError(why) : new UsageError(`--config ${flavour}: ${why}`);
	}
	return wanted.map((w) => join(configDir, w));
}

export function readFragments(paths: readonly string[]): Map<string, string> {
	const merged = new Map<string, string>();
	for (const p of paths) for (const [k, v] of parseConfig(readFileSync(p, 'utf8'))) merged.set(k, v);
	return merged;
}
