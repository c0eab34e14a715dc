import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applySeries, loadSeries } from '../../harness/kernel/series.js';

const made: string[] = [];
afterEach(() => {
	for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
	const d = mkdtempSync(join(tmpdir(), 'larval-series-'));
	made.push(d);
	return d;
}

const GOOD = `--- a/hello.c
+++ b/hello.c
@@ -1 +1 @@
-int x = 1;
+int x = 2;
`;

describe('series loading and applying', () => {
	it('reads no patches when there is no series file', () => {
		expect(loadSeries(tempDir())).toEqual([]);
	});

	it('names a series entry whose file is missing', () => {
		const d = tempDir();
		writeFileSync(join(d, 'series'), '0001-present.patch\n0002-missing.patch\n');
		writeFileSync(join(d, '0001-present.patch'), GOOD);
		expect(() => loadSeries(d)).toThrow(/0002-missing\.patch/);
	});

	it('applies patches in order, and names the one that does not apply with its rejects', async () => {
		const patches = tempDir();
		writeFileSync(join(patches, 'series'), '0001-good.patch\n0002-bad.patch\n');
		writeFileSync(join(patches, '0001-good.patch'), GOOD);
		writeFileSync(join(patches, '0002-bad.patch'), GOOD.replace('int x = 1;', 'int y = 7;').replace('int x = 2;', 'int y = 8;'));
		const src = tempDir();
		mkdirSync(src, { recursive: true });
		writeFileSync(join(src, 'hello.c'), 'int x = 1;\n');
		const err = await applySeries(src, loadSeries(patches)).catch((e: unknown) => e as Error & { detail?: string });
		expect(err).toBeInstanceOf(Error);
		expect((err as Error).message).toMatch(/0002-bad\.patch does not apply/);
		expect((err as { detail?: string }).detail).toMatch(/FAILED|reject/i);
	});
});
