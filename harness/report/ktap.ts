import { describeMachine } from '../vm/machine.js';
import { type CellResult, cellPassed, cellText } from '../suite/session.js';

/**
 * `larval run --ktap`: the matrix as KTAP version 1
 * (Documentation/dev-tools/ktap.rst), what kernel CI systems (KernelCI,
 * LAVA, kselftest runners) parse: one subtest per kernel, one result per
 * case and mode, each subtest indented two spaces.  What went wrong comes
 * as diagnostic lines (`# ...`) before the result it belongs to; a cell
 * that could not run says `# ERROR:`.
 */

/** A test description: KTAP ends it at a `#` (a directive) and at the line's end. */
function description(s: string): string {
	return s.replace(/[#\r\n]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** What a line-based parser should never meet: control characters (ESC, NUL, ...) and halves of a character. */
const UNPRINTABLE = /[\u0000-\u0008\u000B-\u001F\u007F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Diagnostic lines: one per line of @text, what is unprintable dropped, none empty. */
function diagnostics(indent: string, text: string): string[] {
	return text
		.split(/\r?\n/)
		.map((l) => l.replace(UNPRINTABLE, '').trimEnd())
		.filter((l) => l.trim() !== '')
		.map((l) => `${indent}# ${l}`);
}

function cellLines(c: CellResult, n: number, indent: string): string[] {
	const name = description(`${c.caseId} [${c.mode}]`);
	if (cellPassed(c)) return [...diagnostics(indent, cellText(c)), `${indent}ok ${n} ${name}`];
	const why = c.error !== undefined
		? [`ERROR: ${c.error}`]
		: [
			...c.violations.flatMap((v, i) => (v.length ? [`run ${i + 1}: ${v.join('; ')}`] : [])),
			...c.findings.map((f) => `console line ${f.line}: ${f.kind}: ${f.text}`),
			cellText(c),
		];
	return [...diagnostics(indent, why.join('\n')), `${indent}not ok ${n} ${name}`];
}

export function renderKtap(cells: readonly CellResult[], kernels: readonly string[]): string {
	const lines = ['KTAP version 1', `1..${kernels.length}`];
	kernels.forEach((kernel, k) => {
		const cs = cells.filter((c) => c.kernel === kernel);
		const booted = cs.find((c) => c.cpus !== null);
		lines.push('  KTAP version 1', `  # Subtest: ${description(kernel)}`);
		if (booted) lines.push(...diagnostics('  ', `${booted.release}, ${describeMachine(booted)}`));
		lines.push(`  1..${cs.length}`);
		cs.forEach((c, i) => lines.push(...cellLines(c, i + 1, '  ')));
		const passed = cs.filter(cellPassed).length;
		const errors = cs.filter((c) => c.error !== undefined).length;
		lines.push(`# ${description(kernel)}: pass:${passed} fail:${cs.length - passed - errors} skip:0 error:${errors}`);
		// A kernel with no cell ran nothing: that is not a pass.
		lines.push(`${cs.length > 0 && passed === cs.length ? 'ok' : 'not ok'} ${k + 1} ${description(kernel)}`);
	});
	return `${lines.join('\n')}\n`;
}
