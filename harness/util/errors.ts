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

/**
 * A bad option, value or argument (on the command line or in a LARVAL_*
 * variable): what the person typed is wrong, not the harness.  The CLI
 * prints its one line and exits 2; every other LarvalError exits 1.
 */
export class UsageError extends LarvalError {
	constructor(message: string) {
		super(message);
		this.name = 'UsageError';
	}
}

export function tailLines(text: string, n: number): string {
	const lines = text.split('\n');
	if (lines.at(-1) === '') lines.pop();
	return lines.slice(-n).join('\n');
}
