import { describe, expect, it } from 'vitest';
import { CASES as MATRIX, SOAK_CASES, STOCK_MODES } from '../../harness/suite/cases.js';
import { transportTopology } from '../../harness/net/topology.js';

/** The soak cases obey the same rules as the matrix's. */
const CASES = [...MATRIX, ...SOAK_CASES];

describe('the case matrix', () => {
	it('names every case once', () => {
		const ids = CASES.map((c) => c.id);
		expect(new Set(ids).size).toBe(ids.length);
	});

	it('asserts something for every case, in a mode that exists', () => {
		const stockIds = new Set(STOCK_MODES.map((m) => m.id));
		for (const c of CASES) {
			const modes = Object.keys(c.stock);
			for (const m of modes) expect(stockIds, `${c.id}: ${m}`).toContain(m);
			expect(modes.length > 0 || c.resolved !== undefined, c.id).toBe(true);
		}
	});

	it('probes from the server side only where the key manager sits on the client', () => {
		const t = transportTopology();
		expect(t.kmNamespace).toBe(t.client.ns);
		for (const c of CASES.filter((x) => x.fromServer)) expect(c.topology, c.id).toBe('transport');
	});

	it('changes only sysctls the lab resets before every case', async () => {
		const { SYSCTL_DEFAULTS } = await import('../../harness/suite/lab.js');
		for (const c of CASES) for (const k of Object.keys(c.sysctls ?? {})) expect(Object.keys(SYSCTL_DEFAULTS), c.id).toContain(k);
	});
});
