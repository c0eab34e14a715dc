import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileStatic } from '../image/guest-programs.js';
import { parseTap, type TapStream } from '../probe/tap.js';
import { shellJoin } from '../util/shell.js';
import type { Vm } from '../vm/vm.js';

/** What a net kselftest needs beside itself, relative to tools/testing/selftests. */
const NET_SUPPORT = ['net/lib.sh', 'kselftest/ktap_helpers.sh'];

export interface KselftestResult {
	status: number | null;
	tap: TapStream;
	output: string;
}

/** The script's C helpers (TEST_GEN_FILES), built here as the guest programs are. */
async function buildHelper(base: string, name: string): Promise<Buffer> {
	const dir = mkdtempSync(join(tmpdir(), 'larval-kselftest-'));
	try {
		const out = join(dir, name);
		await compileStatic(join(base, 'net', `${name}.c`), out);
		return readFileSync(out);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

/**
 * Runs one of the series' net kselftests from the built tree in the guest:
 * the script, the helpers it sources and the C helpers it runs (built
 * here) are copied in, the same layout kept, and its KTAP output parsed
 * like every guest program's.
 */
export async function runNetKselftest(vm: Vm, srcDir: string, script: string, opts: { helpers?: readonly string[]; timeoutMs?: number } = {}): Promise<KselftestResult> {
	const base = join(srcDir, 'tools/testing/selftests');
	const guestBase = '/tmp/selftests';
	const files: Array<[string, Buffer]> = [...NET_SUPPORT, `net/${script}`].map((rel) => [rel, readFileSync(join(base, rel))]);
	for (const h of opts.helpers ?? []) files.push([`net/${h}`, await buildHelper(base, h)]);
	for (const [rel, content] of files) {
		const dest = `${guestBase}/${rel}`;
		await vm.run(`mkdir -p ${shellJoin([dest.slice(0, dest.lastIndexOf('/'))])} && cat > ${shellJoin([dest])} && chmod +x ${shellJoin([dest])}`, { stdin: content });
	}
	const timeoutMs = opts.timeoutMs ?? 600_000;
	const r = await vm.exec(`cd ${guestBase}/net && bash ./${shellJoin([script])}`, { timeoutMs });
	return { status: r.code, tap: parseTap(r.stdout), output: `${r.stdout}${r.stderr}` };
}

/**
 * What makes a kselftest run fail besides a `not ok`: a plan of 0 (the
 * script skipped everything, `1..0 # SKIP`), no plan or fewer results
 * than planned (it died early), a bail-out, a non-zero status, and any SKIP
 * not in @expectedSkips (ktap_finished() counts a skip as a pass).
 */
export function kselftestViolations(r: KselftestResult, expectedSkips: readonly string[] = []): string[] {
	const out: string[] = [];
	const { tap } = r;
	if (tap.planned === null) out.push('no KTAP plan: the test died before it said how many tests it runs');
	else if (tap.planned === 0) {
		const why = /^1\.\.0 # (SKIP.*)$/m.exec(r.output)?.[1];
		out.push(`a plan of 0: it ran nothing${why ? ` (${why})` : ''}`);
	} else if (tap.points.length < tap.planned) out.push(`${tap.points.length} of ${tap.planned} planned results: it died early`);
	if (tap.bailout !== null) out.push(`bailed out: ${tap.bailout}`);
	for (const p of tap.points) {
		if (!p.ok) out.push(`not ok ${p.id} ${p.name}`);
		else if (p.skip !== false && !expectedSkips.includes(p.name)) out.push(`skipped: ${p.id} ${p.name}${p.skip ? ` (${p.skip})` : ''}`);
	}
	if (r.status !== 0) out.push(`exited with status ${r.status ?? 'none (killed)'}`);
	return out;
}
