/**
 * An error whose message is meant for the person at the terminal: the CLI
 * prints it without a stack trace.  `detail` carries a log tail or the like.
 */
export class LarvalError extends Error {
	constructor(message: string, readonly detail?: string) {
		super(message);
		this.name = 'LarvalError';
	}
}

export function tailLines(text: string, n: number): string {
	const lines = text.split('\n');
	if (lines.at(-1) === '') lines.pop();
	return lines.slice(-n).join('\n');
}
