/**
 * Finds kernel trouble in a serial console capture.  Each finding carries the
 * report that follows the first line (up to the end-of-trace marker or a
 * bound), which is what a developer wants pasted into a bug.
 */
export type FindingKind = 'panic' | 'bug' | 'oops' | 'warning' | 'kasan' | 'lockdep' | 'hung-task' | 'rcu-stall' | 'call-trace' | 'ubsan';

export interface ConsoleFinding {
	kind: FindingKind;
	/** 1-based line number in the capture. */
	line: number;
	text: string;
	report: string;
}

const PATTERNS: ReadonlyArray<readonly [FindingKind, RegExp]> = [
	['panic', /Kernel panic - not syncing/],
	['kasan', /BUG: KASAN:|KASAN: /],
	['lockdep', /possible (recursive|circular) locking|inconsistent lock state|suspicious RCU usage/],
	['hung-task', /INFO: task .* blocked for more than/],
	['rcu-stall', /rcu: INFO: .* detected stalls/],
	['ubsan', /UBSAN: /],
	['bug', /\bBUG: |kernel BUG at /],
	['oops', /\bOops: |general protection fault/],
	['warning', /\bWARNING: /],
	['call-trace', /Call Trace:/],
];

const REPORT_END = /---\[ end (trace|Kernel panic)|^\s*$/;
const REPORT_MAX_LINES = 60;

/** Strips the printk timestamp and caller prefix so patterns match the message. */
function message(line: string): string {
	return line.replace(/^\[\s*\d+\.\d+\]\s*(\[\s*[CT]\d+\]\s*)?/, '');
}

export function scanConsole(text: string): ConsoleFinding[] {
	const lines = text.split(/\r?\n/);
	const findings: ConsoleFinding[] = [];
	// A Call Trace inside a report already found is part of that report.
	let coveredUntil = -1;
	for (let i = 0; i < lines.length; i++) {
		const msg = message(lines[i]!);
		// Guest userspace echoes through /dev/kmsg; its text is never a kernel report.
		if (msg.startsWith('larval-init:') || msg.startsWith('larval:')) continue;
		const hit = PATTERNS.find(([, re]) => re.test(msg));
		if (!hit) continue;
		const [kind] = hit;
		if (kind === 'call-trace' && i <= coveredUntil) continue;
		let end = i + 1;
		while (end < lines.length && end - i < REPORT_MAX_LINES) {
			const m = message(lines[end]!);
			end++;
			if (REPORT_END.test(m)) break;
		}
		findings.push({ kind, line: i + 1, text: msg.trim(), report: lines.slice(i, end).join('\n') });
		coveredUntil = end - 1;
	}
	return findings;
}

export function formatFindings(findings: readonly ConsoleFinding[]): string {
	return findings.map((f) => `${f.kind} at console line ${f.line}: ${f.text}`).join('\n');
}
