import { parseArgs as lexArgs } from 'node:util';
import { UsageError } from './util/errors.js';

export interface OptionSpec {
	/** 'string' takes a value (`--name V` or `--name=V`); 'boolean' is a flag. */
	type: 'string' | 'boolean';
	/** May be given more than once, every value kept in order; otherwise a second one is an error. */
	multiple?: boolean;
}

export interface ArgsSpec {
	options: Readonly<Record<string, OptionSpec>>;
	/** How many positional arguments the command takes (default none). */
	positionals?: number;
	/** Takes a guest command after `--` (exec). */
	rest?: boolean;
}

export interface ParsedArgs {
	/** Every value of each string option given, in order. */
	options: Map<string, string[]>;
	flags: Set<string>;
	positional: string[];
	/** With ArgsSpec.rest: everything after `--`, verbatim. */
	rest: string[];
	/** --help or -h: print the command's usage instead of running it. */
	help: boolean;
}

const HELP: Readonly<Record<string, OptionSpec>> = { help: { type: 'boolean' } };

/** A value that looks like an option: `--timeout --` and `--kernel --repeat` are missing values, not values. */
const optionLike = (v: string) => v.length > 1 && v.startsWith('-');

/**
 * One command's arguments (the words after the command's name), lexed by
 * node:util's parseArgs and checked strictly here, first problem first,
 * so that each error names the offending word: an unknown option, a value
 * missing (or an option where the value should be), a value on a flag, an
 * option given twice that takes one, an argument the command does not take.
 * `--help`/`-h` anywhere before `--` wins over every error.
 */
export function parseArgs(argv: readonly string[], spec: ArgsSpec): ParsedArgs {
	const known = { ...spec.options, ...HELP };
	const lexOptions = Object.fromEntries(Object.entries(known).map(([name, o]) => [name, { type: o.type, ...(name === 'help' ? { short: 'h' } : {}) }]));
	const { tokens } = lexArgs({ args: [...argv], options: lexOptions, strict: false, allowPositionals: true, tokens: true });
	const out: ParsedArgs = { options: new Map(), flags: new Set(), positional: [], rest: [], help: false };
	const terminator = tokens.findIndex((t) => t.kind === 'option-terminator');
	const beforeTerminator = terminator < 0 ? tokens : tokens.slice(0, terminator);
	if (beforeTerminator.some((t) => t.kind === 'option' && t.name === 'help')) return { ...out, help: true };
	const optionList = Object.keys(spec.options).map((o) => `--${o}`).join(' ') || 'none';
	let afterTerminator = false;
	for (const t of tokens) {
		if (t.kind === 'option-terminator') {
			afterTerminator = true;
			continue;
		}
		if (t.kind === 'positional') {
			if (afterTerminator && spec.rest) out.rest.push(t.value);
			else if (spec.rest) throw new UsageError(`the guest command goes after --: unexpected "${t.value}"`);
			else if (out.positional.length >= (spec.positionals ?? 0)) throw new UsageError(`unexpected argument "${t.value}"`);
			else out.positional.push(t.value);
			continue;
		}
		const o = known[t.name];
		if (!o) throw new UsageError(`unknown option ${t.rawName} (options: ${optionList})`);
		if (o.type === 'boolean') {
			if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value, not "${t.value}"`);
			out.flags.add(t.name);
			continue;
		}
		if (t.value === undefined) throw new UsageError(`${t.rawName} needs a value`);
		if (!t.inlineValue && optionLike(t.value)) throw new UsageError(`${t.rawName} needs a value, not "${t.value}" (a value starting with - goes as ${t.rawName}=${t.value})`);
		const values = out.options.get(t.name) ?? [];
		if (values.length && !o.multiple) throw new UsageError(`${t.rawName} given more than once ("${values[0]}", "${t.value}")`);
		out.options.set(t.name, [...values, t.value]);
	}
	return out;
}

/** The one value of a string option, or undefined when not given (parseArgs refused repeats). */
export function single(args: ParsedArgs, name: string): string | undefined {
	return args.options.get(name)?.[0];
}

export function positiveNumber(value: string, what: string): number {
	const n = Number(value);
	if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${what} must be a positive number, not "${value}"`);
	return n;
}

/** A whole number in [min, max] (max: unbounded when omitted). */
export function wholeNumber(value: string, what: string, range: { min?: number; max?: number } = {}): number {
	const { min = 1, max } = range;
	const n = Number(value);
	if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
		throw new UsageError(`${what} must be a whole number ${max === undefined ? `of at least ${min}` : `from ${min} to ${max}`}, not "${value}"`);
	}
	return n;
}
