import { describe, expect, it } from 'vitest';
import { bootedMachines, type PrefixRow } from '../../harness/kernel/check-series.js';
import { renderJunit, renderMachines } from '../../harness/report/table.js';
import type { CellResult } from '../../harness/suite/session.js';

const cell = (over: Partial<CellResult>): CellResult => ({
	kernel: 'stock', release: '6.12.117', accel: 'tcg', cpus: 2, preempt: { model: 'full', dynamic: false },
	caseId: 'udp-datagrams-lost', mode: 'larval_drop=1', outcomes: [], violations: [], findings: [], ...over,
});

describe('the guest machine in the reports', () => {
	it('puts accelerator, vCPUs and preemption model under the table, per kernel', () => {
		const cells = [
			cell({}),
			cell({ kernel: 'distro', release: '6.12.117+deb12-cloud-amd64', preempt: { model: 'voluntary', dynamic: true } }),
			cell({ kernel: 'patched', accel: '?', cpus: null, preempt: null, error: 'no boot' }),
		];
		expect(renderMachines(cells, ['distro', 'stock', 'patched'])).toBe(
			'distro 6.12.117+deb12-cloud-amd64: tcg, 2 vCPUs, PREEMPT_DYNAMIC (voluntary)\nstock 6.12.117: tcg, 2 vCPUs, PREEMPT\npatched: did not boot',
		);
	});

	it('gives each JUnit testsuite its accel, cpus and preempt properties', () => {
		const xml = renderJunit([cell({}), cell({ kernel: 'patched', accel: '?', cpus: null, preempt: null, error: 'no boot' })]);
		expect(xml).toMatch(/<testsuite name="stock"[^>]*>\n {4}<properties><property name="accel" value="tcg"\/><property name="cpus" value="2"\/><property name="preempt" value="PREEMPT"\/><\/properties>/);
		expect(xml).not.toMatch(/<testsuite name="patched"[^>]*>\n {4}<properties>/);
	});

	it('names each machine the series prefixes booted on once', () => {
		const machine = { accel: 'tcg', cpus: 2, preempt: { model: 'full' as const, dynamic: false } };
		const row = (n: number, boot: Partial<PrefixRow['boot']>) => ({ n, boot: { status: 'ok', passed: 4, total: 4, cells: [], ...boot } }) as PrefixRow;
		expect(bootedMachines([row(1, { machine }), row(2, { machine }), row(3, { status: 'skipped' })])).toEqual(['tcg, 2 vCPUs, PREEMPT']);
	});
});
