/**
 * The guest programs' event logs (larval-km, larval-echo): one event per
 * line, `<CLOCK_MONOTONIC ns> KIND key=value ...`, or `READY <ns>`.  All
 * stamps come from one guest clock, so they compare across namespaces.
 */
export interface GuestEvent {
	tNs: bigint;
	kind: string;
	fields: Record<string, string>;
}

export function parseEventLog(text: string): GuestEvent[] {
	const events: GuestEvent[] = [];
	for (const line of text.split('\n')) {
		const words = line.trim().split(/\s+/);
		if (words.length < 2) continue;
		let t: string;
		let kind: string;
		let rest: string[];
		if (/^\d+$/.test(words[0]!)) [t, kind, rest] = [words[0]!, words[1]!, words.slice(2)];
		else if (/^\d+$/.test(words[1]!)) [kind, t, rest] = [words[0]!, words[1]!, words.slice(2)];
		else continue;
		const fields: Record<string, string> = {};
		for (const w of rest) {
			const eq = w.indexOf('=');
			if (eq > 0) fields[w.slice(0, eq)] = w.slice(eq + 1);
		}
		events.push({ tNs: BigInt(t), kind, fields });
	}
	return events;
}

/**
 * When the key manager installed the outbound SA: the moment its NEWSA left
 * (sent_ns), not when it read the ack; a kernel that releases held packets
 * while processing NEWSA delivers them before the ack arrives.
 */
export function outboundInstallNs(events: readonly GuestEvent[]): bigint | null {
	const e = successfulInstall(events, 'out');
	return e ? (requestSentNs(e) ?? e.tNs) : null;
}

/** The key manager's first successful INSTALL of an SA in direction @dir. */
export function successfulInstall(events: readonly GuestEvent[], dir: 'in' | 'out'): GuestEvent | undefined {
	return events.find((x) => x.kind === 'INSTALL' && x.fields.dir === dir && x.fields.err === '0');
}

/** When the request behind a logged reply left (sent_ns); the event's own stamp is when the reply was read. */
export function requestSentNs(e: GuestEvent): bigint | null {
	const sent = e.fields.sent_ns;
	return sent && /^\d+$/.test(sent) ? BigInt(sent) : null;
}
