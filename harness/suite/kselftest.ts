import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

/**
 * Runs one of the series' net kselftests from the built tree in the guest:
 * the script and the helpers it sources are copied in, the same layout kept,
 * and its KTAP output parsed like every guest program's.
 */
export async function runNetKselftest(vm: Vm, srcDir: string, script: string, timeoutMs = 600_000): Promise<KselftestResult> {
	const base = join(srcDir, 'tools/testing/selftests');
	const guestBase = '/tmp/selftests';
	for (const rel of [...NET_SUPPORT, `net/${script}`]) {
		const dest = `${guestBase}/${rel}`;
		await vm.run(`mkdir -p ${shellJoin([dest.slice(0, dest.lastIndexOf('/'))])} && cat > ${shellJoin([dest])} && chmod +x ${shellJoin([dest])}`, {
			stdin: readFileSync(join(base, rel)),
		});
	}
	const r = await vm.exec(`cd ${guestBase}/net && bash ./${shellJoin([script])}`, { timeoutMs });
	return { status: r.code, tap: parseTap(r.stdout), output: `${r.stdout}${r.stderr}` };
}
