import { expect } from 'vitest';
import { type CellResult, cellText } from '../../harness/suite/session.js';

/** A cell ran every repeat, with no error, no console splat, and every run as expected. */
export function expectCellAsExpected(cell: CellResult, label: string, repeat: number): void {
	expect(repeat, 'runs asked for').toBeGreaterThanOrEqual(1);
	const summary = `${label}: ${cellText(cell)}`;
	expect(cell.error, summary).toBeUndefined();
	expect(cell.findings.map((f) => `${f.kind}: ${f.text}`), summary).toEqual([]);
	expect(cell.outcomes).toHaveLength(repeat);
	cell.violations.forEach((v, i) => expect(v, `run ${i + 1} of ${summary}`).toEqual([]));
}
