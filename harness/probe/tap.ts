import { Parser } from 'tap-parser';

/** One test point of a guest program's TAP stream, with its YAML block. */
export interface TapPoint {
	id: number;
	ok: boolean;
	name: string;
	skip: string | false;
	diag: Record<string, unknown>;
}

export interface TapStream {
	points: TapPoint[];
	/** The plan's end, or null when the program printed none (it died). */
	planned: number | null;
	bailout: string | null;
	/** Plan present and matched, no bail-out: the program finished its run. */
	complete: boolean;
	comments: string[];
}

type TapEvent = [string, ...unknown[]];

/**
 * Parses TAP 14 from a guest program.  A stream that stops early (the
 * program crashed or was killed) is still returned, marked incomplete,
 * because what it printed before dying is evidence too.
 */
export function parseTap(text: string): TapStream {
	const events = Parser.parse(text) as TapEvent[];
	const points: TapPoint[] = [];
	const comments: string[] = [];
	let planned: number | null = null;
	let bailout: string | null = null;
	for (const [kind, payload] of events) {
		if (kind === 'assert') {
			const a = payload as { id: number; ok: boolean; name: string; skip: string | boolean; diag: Record<string, unknown> | null; time: number | null };
			// tap-parser lifts a `duration_ms` key out of the YAML block into `time`; put it back.
			const diag = { ...(a.diag ?? {}), ...(a.time !== null && a.time !== undefined ? { duration_ms: a.time } : {}) };
			points.push({
				id: a.id,
				ok: a.ok,
				name: a.name,
				skip: a.skip === false ? false : a.skip === true ? '' : a.skip,
				diag,
			});
		} else if (kind === 'plan') {
			planned = (payload as { end: number }).end;
		} else if (kind === 'bailout') {
			bailout = String(payload ?? '');
		} else if (kind === 'comment') {
			comments.push(String(payload).replace(/^#\s?/, '').trimEnd());
		}
	}
	const complete = bailout === null && planned !== null && planned === points.length;
	return { points, planned, bailout, complete, comments };
}
