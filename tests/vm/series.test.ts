import { describe, expect, it } from 'vitest';
import { checkSeries, renderFailures, renderSeriesTable, rowPassed } from '../../harness/kernel/check-series.js';
import { bootsNoGuest } from './guard.js';

/**
 * The part of `larval check-series` that fits in CI: every patch passes
 * checkpatch with netdev's flags (--strict --max-line-length=80
 * --codespell) and applies on top of the ones before it, in a fresh
 * linux-source-6.12.  The prefix builds and boots (14.5 min here) are
 * `make check-series`.
 */
bootsNoGuest('checkpatch and apply only: the prefixes boot in `make check-series`');

describe('the series', () => {
	it('passes checkpatch with the netdev flags and applies patch by patch (larval check-series --no-build)', async () => {
		const report = await checkSeries({ build: false, boot: false });
		expect(report.rows.length).toBeGreaterThanOrEqual(10);
		expect(report.rows.filter((r) => !rowPassed(r)).map((r) => r.patch), `${renderSeriesTable(report.rows)}\n${renderFailures(report.rows)}`).toEqual([]);
	}, 10 * 60_000);
});
