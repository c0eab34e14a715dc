import { LarvalError } from './util/errors.js';

export interface ParsedArgs {
	command: string;
	/** Repeated options keep every value, in order. */
	options: Map<string, string[]>;
	flags: Set<string>;
	positional: string[];
	/** Everything after `--`, verbatim. */
	rest: string[];
}

/**
 * A small parser: `--name value`, `--name=value`, boolean flags declared by
 * the caller, and `--` ending option parsing.  Unknown options are errors, so
 * a typo never silently runs the default.
 */
export function parseArgs(argv: readonly string[], spec: { options: readonly string[]; flags: readonly string[] }): ParsedArgs {
	const [command = 'help', ...tail] = argv;
	const options = new Map<string, string[]>();
	const flags = new Set<string>();
	const positional: string[] = [];
	let rest: string[] = [];
	for (let i = 0; i < tail.length; i++) {
		const a = tail[i]!;
		if (a === '--') {
			rest = tail.slice(i + 1);
			break;
		}
		if (!a.startsWith('--')) {
			positional.push(a);
			continue;
		}
		const eq = a.indexOf('=');
		const name = a.slice(2, eq < 0 ? undefined : eq);
		if (spec.flags.includes(name)) {
			if (eq >= 0) throw new LarvalError(`--${name} takes no value`);
			flags.add(name);
			continue;
		}
		if (!spec.options.includes(name)) {
			throw new LarvalError(`unknown option --${name} for \`larval ${command}\` (options: ${[...spec.options, ...spec.flags].map((o) => `--${o}`).join(' ')})`);
		}
		let value: string | undefined = eq >= 0 ? a.slice(eq + 1) : tail[++i];
		if (value === undefined) throw new LarvalError(`--${name} needs a value`);
		options.set(name, [...(options.get(name) ?? []), value]);
	}
	return { command, options, flags, positional, rest };
}

export function single(args: ParsedArgs, name: string, fallback: string): string {
	const v = args.options.get(name);
	if (!v?.length) return fallback;
	if (v.length > 1) throw new LarvalError(`--${name} given more than once`);
	return v[0]!;
}

export function positiveNumber(value: string, what: string): number {
	const n = Number(value);
	if (!Number.isFinite(n) || n <= 0) throw new LarvalError(`${what} must be a positive number, not "${value}"`);
	return n;
}
