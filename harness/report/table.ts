import { type CellResult, cellPassed, cellText } from '../suite/session.js';
import { describeMachine, preemptLabel } from '../vm/machine.js';

/**
 * The body of a table of @cells: a row per @rowKey (in the order rows
 * first appear), its label then a column per kernel, each cell @show of
 * that kernel's cell or '-' where it has none.
 */
export function cellRows(cells: readonly CellResult[], kernels: readonly string[], rowKey: (c: CellResult) => string, show: (c: CellResult) => string): string[][] {
	const rows = new Map<string, Map<string, CellResult>>();
	for (const c of cells) {
		const key = rowKey(c);
		if (!rows.has(key)) rows.set(key, new Map());
		rows.get(key)!.set(c.kernel, c);
	}
	return [...rows].map(([key, byKernel]) => [key, ...kernels.map((k) => (byKernel.has(k) ? show(byKernel.get(k)!) : '-'))]);
}

/** Rows (case × mode) by columns (kernels), as plain text for a terminal or a README. */
export function renderTable(cells: readonly CellResult[], kernels: readonly string[]): string {
	const body = cellRows(cells, kernels, (c) => `${c.caseId} [${c.mode}]`, (c) => `${cellPassed(c) ? 'ok' : 'FAIL'}: ${cellText(c)}`);
	return textTable(['case [mode]', ...kernels], body);
}

/** Under the table, one line per kernel: "stock 6.12.117: tcg, 2 vCPUs, PREEMPT" (each machine its guests ran on). */
export function renderMachines(cells: readonly CellResult[], kernels: readonly string[]): string {
	return kernels
		.map((k) => {
			const mine = cells.filter((c) => c.kernel === k && c.cpus !== null);
			const machines = [...new Set(mine.map(describeMachine))];
			return `${k}${mine[0] ? ` ${mine[0].release}` : ''}: ${machines.join(' / ') || 'did not boot'}`;
		})
		.join('\n');
}

/** A Markdown-compatible table, columns padded so it also reads in a terminal. */
export function textTable(header: readonly string[], body: ReadonlyArray<readonly string[]>): string {
	const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
	const line = (r: readonly string[]) => `| ${r.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
	return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

/**
 * What XML 1.0 cannot hold, escaped or not: the C0 controls but tab, LF and
 * CR (NUL, ESC, ...), lone surrogates (from a console chunk cut inside a
 * character), U+FFFE and U+FFFF.  Bytes that were not UTF-8 arrive as
 * U+FFFD, which XML holds.
 */
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** @s as XML text or attribute value: the five specials escaped, and what XML cannot hold written as \xHH or \uHHHH. */
export function xml(s: string): string {
	return s
		.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!)
		.replace(NOT_XML, (ch) => {
			const code = ch.charCodeAt(0);
			return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
		});
}

const seconds = (ms: number | undefined) => ((ms ?? 0) / 1000).toFixed(3);

/** What went wrong in a cell that ran: each run's violations, then each console finding with its report. */
function failureText(c: CellResult): string {
	return [
		...c.violations.flatMap((v, i) => (v.length ? [`run ${i + 1}: ${v.join('; ')}`] : [])),
		...c.findings.map((f) => `console line ${f.line}: ${f.kind}: ${f.text}\n${f.report}`),
	].join('\n');
}

/**
 * JUnit XML, one testsuite per kernel (the kernel is each case's
 * classname), for CI systems that render it.  A cell that could not run
 * (guest died, set-up failed) is an <error>; one that ran and contradicted
 * its expectation, or left a console finding, a <failure>.  Valid XML
 * whatever the guest printed.
 */
export function renderJunit(cells: readonly CellResult[]): string {
	const byKernel = new Map<string, CellResult[]>();
	for (const c of cells) byKernel.set(c.kernel, [...(byKernel.get(c.kernel) ?? []), c]);
	const count = (cs: readonly CellResult[]) => ({
		tests: cs.length,
		errors: cs.filter((c) => c.error !== undefined).length,
		failures: cs.filter((c) => c.error === undefined && !cellPassed(c)).length,
		ms: cs.reduce((t, c) => t + (c.ms ?? 0), 0),
	});
	const totals = (n: ReturnType<typeof count>) => `tests="${n.tests}" errors="${n.errors}" failures="${n.failures}" skipped="0" time="${seconds(n.ms)}"`;
	const suites = [...byKernel].map(([kernel, cs]) => {
		const booted = cs.find((c) => c.cpus !== null);
		const properties = booted
			? `    <properties><property name="accel" value="${xml(booted.accel)}"/><property name="cpus" value="${booted.cpus}"/><property name="preempt" value="${xml(preemptLabel(booted.preempt))}"/></properties>\n`
			: '';
		const cases = cs.map((c) => {
			const head = `    <testcase classname="${xml(kernel)}" name="${xml(`${c.caseId} [${c.mode}]`)}" time="${seconds(c.ms)}">`;
			const out = `<system-out>${xml(cellText(c))}</system-out>`;
			if (c.error !== undefined) return `${head}<error type="set-up" message="${xml(c.error.split('\n')[0] ?? '')}">${xml(c.error)}</error>${out}</testcase>`;
			if (!cellPassed(c)) {
				const why = failureText(c);
				return `${head}<failure message="${xml(why.split('\n')[0] ?? '')}">${xml(why)}</failure>${out}</testcase>`;
			}
			return `${head}${out}</testcase>`;
		});
		return `  <testsuite name="${xml(kernel)}" ${totals(count(cs))}>\n${properties}${cases.join('\n')}\n  </testsuite>`;
	});
	return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="larval run" ${totals(count(cells))}>\n${suites.join('\n')}\n</testsuites>\n`;
}
