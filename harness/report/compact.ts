import { median } from '../util/stats.js';
import type { Outcome } from '../suite/outcome.js';
import { type CellResult, cellPassed } from '../suite/session.js';
import { cellRows, textTable } from './table.js';

/**
 * The terminal's table (issue #18): a row per case and mode, a column per
 * kernel, each cell a verdict mark and the runs' median in a few words
 * ("lost 3/3", "connect 54 ms", "first 62 ms").  It fits about 160
 * columns with three kernels; every run's detail stays in the progress
 * lines above it, the JSON and the JUnit.
 */

/** Modes by what they do, short enough for a row label; the legend under the table spells them out. */
export const MODE_ABBREVIATIONS: Readonly<Record<string, string>> = {
	'larval_drop=1': 'drop',
	'larval_drop=0': 'queue',
	'xfrm_resolve=1': 'resolve',
};

/** The widest a cell's summary may be: with its mark, three kernels and a 43-column label fit 160. */
export const SUMMARY_WIDTH = 32;

/** A datagram connect() returns in a few ms under TCG; one that took longer waited for something. */
const CONNECT_WAITED_MS = 20;

const ms = (values: readonly number[]) => `${Math.round(median(values) ?? NaN)} ms`;

/** What one run comes to, as a kind (what happened) and the numbers whose median the cell shows. */
function runShape(o: Outcome): { kind: string; numbers: Record<string, number> } {
	const kind: string[] = [];
	const numbers: Record<string, number> = {};
	if (!o.complete) return { kind: 'probe failed', numbers };
	if (o.connect) {
		const poll = o.pollConnect?.revents ? o.pollConnect : undefined;
		// What poll() said after connect(), one word with its time: "EINPROGRESS→POLLOUT 53 ms"
		// for a non-blocking connect(), "POLLERR EHOSTUNREACH 1000 ms" for a failed one,
		// "POLLOUT 0 ms" after a datagram connect() (stock's lie when nothing can leave).
		if (poll) {
			kind.push(poll.soError ? `POLLERR ${poll.soError}` : o.connect.errno === 'EINPROGRESS' ? 'EINPROGRESS→POLLOUT' : 'POLLOUT');
			numbers.poll = poll.waitedMs;
		} else if (o.connect.errno) kind.push(o.connect.errno === 'EINPROGRESS' ? 'EINPROGRESS' : `connect ${o.connect.errno}`);
		// A datagram connect() returns at once; only one that waited says something.
		else if (o.connect.ms >= CONNECT_WAITED_MS) {
			kind.push('connect');
			numbers.connect = o.connect.ms;
		}
	}
	if (o.pollBeforeSend?.revents) kind.push(`poll ${o.pollBeforeSend.revents}`);
	const errnos = [...new Set(o.sends.map((s) => s.errno).filter(Boolean))];
	if (errnos.length) kind.push(errnos.join('/'));
	if (o.sent > 0) {
		if (o.received === 0) kind.push(`lost ${o.lost}/${o.sent}`);
		else {
			if (o.lost) kind.push(`lost ${o.lost}/${o.sent}`);
			kind.push('first');
			numbers.first = o.firstReplyMs ?? NaN;
		}
	}
	if (o.ike) kind.push(o.ike.ms === null ? 'no CHILD_SA' : 'IKE');
	if (o.ike?.ms) numbers.ike = o.ike.ms;
	if (o.clearAtPeer) kind.push(`${o.clearAtPeer} in clear`);
	return { kind: kind.join(', '), numbers };
}

/** A cell's runs in a few words: the shared kind with each number's median, or the kinds seen when runs differ. */
export function summarize(c: CellResult): string {
	if (c.error) return 'ERROR (see above)';
	if (!c.outcomes.length) return 'no run';
	const shapes = c.outcomes.map(runShape);
	const kinds = [...new Set(shapes.map((s) => s.kind))];
	if (kinds.length > 1) return clip([`runs differ: ${kinds.join(' / ')}`]);
	const words = kinds[0]!.split(', ').map((w) => {
		// "connect", "first", "IKE" and "POLLOUT" carry a time: the median over the runs.
		const key = w === 'connect' ? 'connect' : w === 'first' ? 'first' : w === 'IKE' ? 'ike' : /POLLOUT$|^POLLERR /.test(w) ? 'poll' : '';
		const values = key ? shapes.map((s) => s.numbers[key]).filter((v): v is number => v !== undefined && Number.isFinite(v)) : [];
		return values.length ? `${w} ${ms(values)}` : w;
	});
	if (c.outcomes.length > 1) words.push(`×${c.outcomes.length}`);
	return clip(words.length ? words : ['as expected']);
}

/** @words joined, the last ones left out (and "…" said) until it fits: a word is never cut. */
export function clip(words: readonly string[]): string {
	for (let n = words.length; n > 0; n--) {
		const s = words.slice(0, n).join(', ') + (n < words.length ? ', …' : '');
		if (s.length <= SUMMARY_WIDTH) return s;
	}
	return `${words[0]!.slice(0, SUMMARY_WIDTH - 1)}…`;
}

/** ✓ (as expected) or ✗ (not, or could not run), then the summary. */
export function compactCell(c: CellResult): string {
	return `${cellPassed(c) ? '✓' : '✗'} ${summarize(c)}`;
}

/**
 * The compact table, and under it the legend of the mode abbreviations it
 * used.  @byCase (the main job, one cell per case and kernel): a row per
 * case, and the legend says which mode each kernel ran.
 */
export function renderCompactTable(cells: readonly CellResult[], kernels: readonly string[], opts: { byCase?: boolean } = {}): string {
	if (opts.byCase) return renderByCase(cells, kernels);
	const body = cellRows(cells, kernels, (c) => `${c.caseId} ${MODE_ABBREVIATIONS[c.mode] ?? c.mode}`, compactCell);
	const legend = [...new Set(cells.map((c) => c.mode))].filter((m) => MODE_ABBREVIATIONS[m]).map((m) => `${MODE_ABBREVIATIONS[m]} = ${m}`).join(', ');
	return `${textTable(['case mode', ...kernels], body)}\n✓ as expected, ✗ not${legend ? `; ${legend}` : ''}; times are medians over the runs, every run is in --json`;
}

function renderByCase(cells: readonly CellResult[], kernels: readonly string[]): string {
	const body = cellRows(cells, kernels, (c) => c.caseId, compactCell);
	const modesOf = (k: string) => [...new Set(cells.filter((c) => c.kernel === k).map((c) => c.mode))].join(' or ');
	const legend = kernels.map((k) => `${k} in ${modesOf(k) || 'no mode'}`).join(', ');
	return `${textTable(['case', ...kernels], body)}\n✓ as expected, ✗ not; ${legend}; times are medians over the runs, every run is in --json`;
}
