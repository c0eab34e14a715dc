import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LINES } from '../../harness/kernel/line.js';
import { parseShard } from '../../harness/suite/shard.js';

const workflow = readFileSync(new URL('../../.github/workflows/ci.yml', import.meta.url), 'utf8');

/** A `key: ["a", "b"]` flow list of the workflow (written as JSON so that no YAML parser is needed), the n-th one. */
function flowList(key: string, n = 0): string[] {
	const lists = [...workflow.matchAll(new RegExp(`^\\s+${key}: (\\[.*\\])\\s*$`, 'gm'))];
	expect(lists.length, `a ${key}: [...] list in ci.yml`).toBeGreaterThan(n);
	return JSON.parse(lists[n]![1]!) as string[];
}

describe('the GitHub workflow', () => {
	it('runs every shard of one split exactly once, for every kernel line', () => {
		const shards = flowList('shard').map(parseShard);
		const count = shards[0]!.count;
		expect(shards.every((s) => s.count === count)).toBe(true);
		expect(shards.map((s) => s.index).sort((a, b) => a - b)).toEqual([...Array(count).keys()].map((i) => i + 1));
		expect(flowList('line').sort()).toEqual(Object.keys(LINES).sort());
		// the merge job's lines, and the number of parts it waits for
		expect(flowList('line', 1).sort()).toEqual(Object.keys(LINES).sort());
		expect(workflow).toMatch(new RegExp(`node \\.ci/merge-reports ${count} `));
	});
});
