import { type CellResult, cellPassed, cellText } from '../suite/session.js';
import { describeMachine, preemptLabel } from '../vm/machine.js';

/** Rows (case × mode) by columns (kernels), as plain text for a terminal or a README. */
export function renderTable(cells: readonly CellResult[], kernels: readonly string[]): string {
	const rows = new Map<string, Map<string, CellResult>>();
	for (const c of cells) {
		const key = `${c.caseId} [${c.mode}]`;
		if (!rows.has(key)) rows.set(key, new Map());
		rows.get(key)!.set(c.kernel, c);
	}
	const header = ['case [mode]', ...kernels];
	const body = [...rows].map(([key, byKernel]) => [
		key,
		...kernels.map((k) => {
			const c = byKernel.get(k);
			if (!c) return '-';
			return `${cellPassed(c) ? 'ok' : 'FAIL'}: ${cellText(c)}`;
		}),
	]);
	return textTable(header, body);
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

function xml(s: string): string {
	return s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

/** JUnit XML, one testsuite per kernel, for CI systems that render it. */
export function renderJunit(cells: readonly CellResult[]): string {
	const byKernel = new Map<string, CellResult[]>();
	for (const c of cells) byKernel.set(c.kernel, [...(byKernel.get(c.kernel) ?? []), c]);
	const suites = [...byKernel].map(([kernel, cs]) => {
		const failures = cs.filter((c) => !cellPassed(c)).length;
		const booted = cs.find((c) => c.cpus !== null);
		const properties = booted
			? `    <properties><property name="accel" value="${xml(booted.accel)}"/><property name="cpus" value="${booted.cpus}"/><property name="preempt" value="${xml(preemptLabel(booted.preempt))}"/></properties>\n`
			: '';
		const cases = cs.map((c) => {
			const name = xml(`${c.caseId} [${c.mode}]`);
			if (cellPassed(c)) return `    <testcase classname="${xml(kernel)}" name="${name}"><system-out>${xml(cellText(c))}</system-out></testcase>`;
			const why = c.error ?? [...c.violations.flat(), ...c.findings.map((f) => `${f.kind}: ${f.text}`)].join('\n');
			return `    <testcase classname="${xml(kernel)}" name="${name}"><failure message="${xml(why.split('\n')[0] ?? '')}">${xml(`${why}\n\n${cellText(c)}`)}</failure></testcase>`;
		});
		return `  <testsuite name="${xml(kernel)}" tests="${cs.length}" failures="${failures}">\n${properties}${cases.join('\n')}\n  </testsuite>`;
	});
	return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join('\n')}\n</testsuites>\n`;
}
