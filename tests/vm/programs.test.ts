import { afterAll, describe, expect, it } from 'vitest';
import { hostToolsOverlay } from '../../harness/image/build.js';
import { resolveKernel } from '../../harness/kernel/target.js';
import { describeProgramRun, PROGRAM_CASES, PROGRAM_TOOLS, programViolations, type ProgramRun, runProgram, setUpPrograms, slowerThanStock } from '../../harness/suite/programs.js';
import { KernelSession } from '../../harness/suite/session.js';
import { formatFindings } from '../../harness/vm/console-scan.js';
import { progress } from '../../harness/util/progress.js';

/**
 * Issue #15: unmodified Debian programs through a trap policy
 * (harness/suite/programs.ts), stock then the series, one run each: what
 * each prints and how long it takes, and at the end the series against
 * stock, program by program: none may be slower beyond noise.  The
 * `getent*-sort-silent` rows are the 2026 revision's getaddrinfo() stall
 * (glibc connect()s a UDP socket to each address it sorts; with a silent
 * key manager the series before 0013 slept there until the acquire
 * expired).
 */
const runs = new Map<string, ProgramRun>();

describe.each(['stock', 'patched'] as const)('real programs through a trap policy, %s', (kernelName) => {
	let session: KernelSession | undefined;
	const getSession = async () => {
		if (!session) {
			session = new KernelSession(await resolveKernel(kernelName), 'test', { overlays: [['programs', await hostToolsOverlay(PROGRAM_TOOLS)]] });
			await setUpPrograms(await session.vm());
		}
		return session;
	};
	afterAll(async () => {
		await session?.close();
	});

	for (const c of PROGRAM_CASES) {
		it(`${c.id}: ${c.title}: ${c.answered[kernelName] ? 'answered' : 'no answer'}`, async () => {
			const s = await getSession();
			const r = await runProgram(await s.vm(), c);
			runs.set(`${kernelName} ${c.id}`, r);
			progress(`${kernelName} ${describeProgramRun(r)}`);
			expect(programViolations(c, kernelName, r)).toEqual([]);
			const findings = s.newFindings();
			expect(findings.length, formatFindings(findings)).toBe(0);
		}, 90_000);
	}
});

describe('the series against stock, program by program', () => {
	for (const c of PROGRAM_CASES) {
		it(`${c.id}: not slower on the series than on stock`, () => {
			const stock = runs.get(`stock ${c.id}`);
			const patched = runs.get(`patched ${c.id}`);
			expect(stock, `stock ${c.id} did not run`).toBeDefined();
			expect(patched, `patched ${c.id} did not run`).toBeDefined();
			expect(slowerThanStock(c, stock!, patched!)).toEqual([]);
		});
	}
});
