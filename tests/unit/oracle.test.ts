import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Case, CASES, CHECK_NAMES, type Check, RESOLVE_1, SOAK_CASES, withCheckPassing } from '../../harness/suite/cases.js';
import { caseRunOf } from '../../harness/suite/lab.js';
import { type Outcome, outcomeOf } from '../../harness/suite/outcome.js';
import { type OracleRecording, readRecording, runKey } from '../fixtures/record-oracle.js';

/**
 * The oracle: every expectation of harness/suite/cases.ts judged on real
 * runs, recorded once per case and mode by tests/fixtures/record-oracle.ts
 * (the guest's whole output, replayed through caseRunOf() and outcomeOf()).
 * Stock's expectation must accept the stock kernel's run and reject the
 * series' (xfrm_resolve=1) run, and the series' expectation the reverse;
 * every expectation must reject a run whose probe failed, and a few
 * deliberately wrong runs single out the building blocks that the two
 * kernels do not tell apart.  The mutation guard below makes each building
 * block pass everything in turn and requires the oracle to fail.
 */
const fixture = (name: string) => join(import.meta.dirname, '../fixtures', name);
const STOCK = readRecording(fixture('oracle-distro.json.gz'));
const PATCHED = readRecording(fixture('oracle-patched.json.gz'));
const ALL: readonly Case[] = [...CASES, ...SOAK_CASES];

function rawRun(rec: OracleRecording, c: Case, mode: string): string {
	const raw = rec.runs[runKey(c.id, mode)];
	if (raw === undefined) throw new Error(`${rec.kernel} has no recorded run of ${runKey(c.id, mode)}: record it (tests/fixtures/record-oracle.ts)`);
	return raw;
}

const outcomeOfRaw = (c: Case, raw: string): Outcome => outcomeOf(caseRunOf(raw, { during: c.during?.length ?? 0 }));
const outcomeIn = (rec: OracleRecording, c: Case, mode: string) => outcomeOfRaw(c, rawRun(rec, c, mode));
/** The stock modes recorded for @c: those it declares, and larval_drop=1 for every case. */
const stockRunsOf = (c: Case) => Object.keys(STOCK.runs).filter((k) => k.startsWith(`${c.id} [`)).map((k) => k.slice(c.id.length + 2, -1));

/**
 * Where an expectation is meant to accept the other kernel's run, and why.
 * The list is exact: an entry whose overlap is gone fails too.
 */
const OVERLAPS: Record<string, string> = {
	// Stock's hold queue (larval_drop=0) also holds the packet and sends it: only later, on a timer tick, with
	// loose bounds because stock varies from run to run.  The series' run falls within them.
	'stock[tcp-connect-blackhole larval_drop=0] accepts patched': 'held in both; the queue timer only bounds it from below by 50 ms',
	'stock[tcp6-connect-blackhole larval_drop=0] accepts patched': 'held in both; the queue timer only bounds it from below by 50 ms',
	'stock[tunnel-tcp-connect larval_drop=0] accepts patched': 'held in both; the queue timer only bounds it from below by 50 ms',
	'stock[tcp-connect-nonblock larval_drop=0] accepts patched': 'POLLOUT after 50..3000 ms: the series also raises it after the SA (~60 ms)',
	'stock[udp-km-slow larval_drop=0] accepts patched': 'held, then sent after the 500 ms answer, in both',
	'stock[tcp-connect-km-slow larval_drop=0] accepts patched': 'the SYN waits for the 500 ms answer in both',
	'stock[udp-stale-queue-dst larval_drop=1] accepts patched': 'later datagrams are normal on both: the blackhole route is re-checked on stock',
	// Where the series promises what stock already does.
	'stock[tcp-connect-km-never larval_drop=1] accepts patched': 'the same expectation: connect() gives up at SO_SNDTIMEO on both',
	'resolved[tcp-connect-km-never] accepts stock larval_drop=1': 'the same expectation: connect() gives up at SO_SNDTIMEO on both',
	// The socket option's cases: where the option is known (patched), stock's row expects the series' behaviour.
	'stock[udp-strict-connect larval_drop=1] accepts patched': 'ifOptionKnown: the option is known on patched',
	'stock[udp6-strict-connect larval_drop=1] accepts patched': 'ifOptionKnown: the option is known on patched',
	'stock[udp-strict-connect-acquire-fails larval_drop=1] accepts patched': 'ifOptionKnown: the option is known on patched',
	'stock[udp6-strict-connect-acquire-fails larval_drop=1] accepts patched': 'ifOptionKnown: the option is known on patched',
	'stock[udp-strict-blocking-connect larval_drop=1] accepts patched': 'ifOptionKnown: the option is known on patched',
	'stock[udp6-strict-blocking-connect larval_drop=1] accepts patched': 'ifOptionKnown: the option is known on patched',
	'stock[udp-opt-out larval_drop=1] accepts patched': 'the socket opts out: stock semantics on both',
	'stock[udp6-opt-out larval_drop=1] accepts patched': 'the socket opts out: stock semantics on both',
	// A fault case asserts what must hold while the world changes (no call fails, nothing in clear): stock holds it too.
	'resolved[fault-resolve-flipped-under-traffic] accepts stock larval_drop=1': 'no call fails and nothing leaves in clear on stock either',
	// A gap the oracle found: with the key manager answering at 50 ms, stock's hold queue releases on its first tick
	// (100 ms), ~52 ms after the installation, inside RELEASE_SLACK (60 ms); the series released 14-29 ms after it.
	// These rows of the series cannot tell its release from the hold queue's.
	'resolved[tcp-connect-blackhole] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
	'resolved[tcp6-connect-blackhole] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
	'resolved[tunnel-tcp-connect] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
	'resolved[tunnel-udp-lost] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
	'resolved[tunnel-udp6-lost] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
	// The same row under the firewall: the gateway admits the echoes that come through IPsec, so stock's queue passes too.
	'resolved[tunnel-udp-lost-fw] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
	// Recorded: the SA came late, and the series' first reply after 90 ms, which stock's "held for a timer tick" admits.
	'stock[tunnel-udp-lost-fw larval_drop=0] accepts patched': 'a late SA puts the series\' reply where a timer tick would',
	'resolved[tunnel-ping-lost] accepts stock larval_drop=0': 'the queue tick falls within RELEASE_SLACK of a 50 ms answer',
};

/**
 * Recorded runs where the kernel, not the oracle, is wrong: the expectation
 * must reject the run (the verdict flips), so the entry fails the day the
 * bug is fixed and the run re-recorded.  Exact, as OVERLAPS.
 */
const KNOWN_KERNEL_BUGS: Record<string, string> = {};

interface Verdict {
	/** `stock[case mode]` or `resolved[case]`, what it is judged on, and whether it should accept. */
	what: string;
	check: Check;
	outcome: Outcome;
	accept: boolean;
}

/** The probe exited 1 after printing all it printed: only probeRan can see it. */
const probeFailed = (raw: string) => raw.replace(/^=== probe-status\n0$/m, '=== probe-status\n1');

/**
 * Deliberately wrong runs, one edit to a real accepted run each, for the
 * building blocks the two kernels' runs never single out: the expectation
 * must reject the edited run.
 */
const failSend = (o: Outcome, i: number, errno: string): Outcome => ({ ...o, sends: o.sends.map((s, j) => (j === i ? { ...s, ret: -1, errno } : s)) });
const WRONG: ReadonlyArray<{ expectation: string; edit: string; wrong: (o: Outcome) => Outcome }> = [
	{ expectation: 'stock[udp-datagrams-lost larval_drop=1]', edit: 'send 2 failed with ENOBUFS', wrong: (o) => failSend(o, 1, 'ENOBUFS') },
	{ expectation: 'stock[tcp-connect-nonblock larval_drop=1]', edit: 'the second connect() succeeded', wrong: (o) => ({ ...o, connectAgain: { ...o.connectAgain!, ret: 0, errno: '' } }) },
	{ expectation: 'resolved[udp-strict-connect-acquire-fails]', edit: 'POLLOUT with no SO_ERROR', wrong: (o) => ({ ...o, pollConnect: { ...o.pollConnect!, soError: '' } }) },
	{ expectation: 'stock[udp-poll-lies larval_drop=1]', edit: 'poll() said nothing right after connect()', wrong: (o) => ({ ...o, pollBeforeSend: { revents: '' } }) },
	{ expectation: 'resolved[udp-poll-lies]', edit: 'poll() said POLLOUT right after connect()', wrong: (o) => ({ ...o, pollBeforeSend: { revents: 'POLLOUT' } }) },
	{ expectation: 'stock[udp-queue-overflow-eagain larval_drop=0]', edit: 'the first EAGAIN at send 50', wrong: (o) => failSend(o, 49, 'EAGAIN') },
	{ expectation: 'stock[udp-km-dies larval_drop=1]', edit: 'a second ACQUIRE', wrong: (o) => ({ ...o, acquires: 2 }) },
	{ expectation: 'resolved[fault-sa-churn-under-traffic]', edit: 'one ACQUIRE for 12 flushes', wrong: (o) => ({ ...o, acquires: 1 }) },
	// A failure no flush accounts for, and one of a kind no flush causes (sendsSucceedOrFlushed).
	{ expectation: 'resolved[fault-sa-churn-under-traffic]', edit: 'send 5 failed with EHOSTUNREACH though no wait or held packet failed', wrong: (o) => ({ ...failSend(o, 4, 'EHOSTUNREACH'), nearCounters: { ...o.nearCounters, XfrmOutLarvalWaitFailed: 0, XfrmOutLarvalFailed: 0 } }) },
	{ expectation: 'resolved[soak-sa-churn-60s]', edit: 'send 7 failed with ENOBUFS', wrong: (o) => failSend(o, 6, 'ENOBUFS') },
	{ expectation: 'resolved[fault-km-killed-during-udp-connect]', edit: 'the key manager exiting in order', wrong: (o) => ({ ...o, kmLog: [...o.kmLog, '1200.0 SUMMARY acquires=1 installs=0 deletes=0 errors=0'] }) },
	{ expectation: 'resolved[fault-sa-flush-during-tcp-connect]', edit: 'three packets in clear at the peer', wrong: (o) => ({ ...o, clearAtPeer: 3 }) },
	// What the series up to 0011 did on 2 vCPUs (larval-probe --reconnect: so_error 113).
	{ expectation: 'resolved[udp-stale-waiter]', edit: 'EHOSTUNREACH left in SO_ERROR', wrong: (o) => ({ ...o, soErrorAfter: 'EHOSTUNREACH' }) },
	// What the series up to 0012 did (the oracle fixture of that series: a blocking datagram connect() that waited for
	// a fast key manager's answer, 5 ms past the installation, well within CONNECT_AT_ONCE_MS).
	{ expectation: 'resolved[udp-datagrams-lost]', edit: 'connect() returning after the SA was installed, and send 1 at once', wrong: (o) => ({ ...o, connect: { ...o.connect!, ms: o.installAtMs! + 5 }, sends: o.sends.map((x, j) => (j === 0 ? { ...x, ms: 1 } : x)) }) },
	{ expectation: 'resolved[udp-shutdown-during-wait]', edit: 'the second send() asleep 300 ms', wrong: (o) => ({ ...o, sends: o.sends.map((x, j) => (j === 1 ? { ...x, ms: 300 } : x)) }) },
	{ expectation: 'resolved[udp-sendto-overflow]', edit: 'send 105 succeeding past the full queue', wrong: (o) => failSend(o, 104, '') },
	{ expectation: 'resolved[udp-strict-blocking-connect]', edit: 'connect() returning at once', wrong: (o) => ({ ...o, connect: { ...o.connect!, ms: 1 } }) },
];

function expectationsOf(c: Case): Array<{ name: string; check: Check; rec: OracleRecording; mode: string }> {
	return [
		...Object.entries(c.stock).map(([m, check]) => ({ name: `stock[${c.id} ${m}]`, check: check!, rec: STOCK, mode: m })),
		...(c.resolved ? [{ name: `resolved[${c.id}]`, check: c.resolved, rec: PATCHED, mode: RESOLVE_1.id }] : []),
	];
}

function verdictsOf(c: Case): Verdict[] {
	const out: Verdict[] = [];
	const patched = c.resolved ? outcomeIn(PATCHED, c, RESOLVE_1.id) : undefined;
	for (const e of expectationsOf(c)) {
		const raw = rawRun(e.rec, c, e.mode);
		out.push({ what: `${e.name} accepts ${e.rec === STOCK ? `stock ${e.mode}` : 'patched'}`, check: e.check, outcome: outcomeOfRaw(c, raw), accept: true });
		out.push({ what: `${e.name} rejects its run with the probe failed`, check: e.check, outcome: outcomeOfRaw(c, probeFailed(raw)), accept: false });
		if (e.rec === STOCK && patched) out.push({ what: `${e.name} accepts patched`, check: e.check, outcome: patched, accept: false });
		if (e.rec === PATCHED) for (const m of stockRunsOf(c)) out.push({ what: `${e.name} accepts stock ${m}`, check: e.check, outcome: outcomeIn(STOCK, c, m), accept: false });
		for (const w of WRONG.filter((x) => x.expectation === e.name)) out.push({ what: `${e.name} rejects its run with ${w.edit}`, check: e.check, outcome: w.wrong(outcomeOfRaw(c, raw)), accept: false });
	}
	// A rejection the overlaps excuse is expected to be an acceptance instead, and a known kernel bug's run a rejection.
	return out.map((v) => (OVERLAPS[v.what] ? { ...v, accept: true } : KNOWN_KERNEL_BUGS[v.what] ? { ...v, accept: false } : v));
}

/** Each case's verdicts, built once: the outcomes do not change, only the checks run again (the mutation guard). */
const verdictCache = new Map<Case, Verdict[]>();
const verdicts = (c: Case) => verdictCache.get(c) ?? verdictCache.set(c, verdictsOf(c)).get(c)!;

/** What the oracle says is wrong with @cases: every verdict that came out otherwise. */
function oracleFailures(cases: readonly Case[] = ALL): string[] {
	return cases.flatMap(verdicts).flatMap((v) => {
		const misses = v.check(v.outcome);
		if (v.accept && misses.length) return [`${v.what}: it does not (${misses.join('; ')})`];
		if (!v.accept && !misses.length) return [`${v.what.replace(' accepts ', ' rejects ')}: it does not`];
		return [];
	});
}

describe('the oracle on recorded runs of the distro kernel and of patched', () => {
	it('has a stock run of every case and a patched run of every case the series expects something of', () => {
		for (const c of ALL) {
			expect(stockRunsOf(c), c.id).toContain('larval_drop=1');
			for (const m of Object.keys(c.stock)) expect(stockRunsOf(c), c.id).toContain(m);
			if (c.resolved) expect(Object.keys(PATCHED.runs), c.id).toContain(runKey(c.id, RESOLVE_1.id));
		}
		expect(STOCK.release).toMatch(/-cloud-amd64$/);
		expect(PATCHED.kernel).toBe('patched');
	});

	it.each(ALL.map((c) => [c.id, c] as const))('%s: stock accepts stock and rejects patched, the series the reverse', (_, c) => {
		expect(oracleFailures([c])).toEqual([]);
	});

	it('lists only overlaps that exist', () => {
		const judged = new Set(ALL.flatMap(verdicts).map((v) => v.what));
		expect(Object.keys(OVERLAPS).filter((k) => !judged.has(k))).toEqual([]);
		expect(Object.keys(KNOWN_KERNEL_BUGS).filter((k) => !judged.has(k))).toEqual([]);
	});
});

describe('outcomeOf on recorded runs', () => {
	const udp = CASES.find((c) => c.id === 'udp-datagrams-lost')!;

	it('reads the stock run: three datagrams sent and lost, one ACQUIRE, the SA ~50 ms after it', () => {
		const o = outcomeIn(STOCK, udp, 'larval_drop=1');
		expect(o).toMatchObject({ complete: true, problems: [], sent: 3, received: 0, lost: 3, lostIds: [1, 2, 3], firstReplyMs: null, acquires: 1, installs: 2, clearAtPeer: 0 });
		expect(o.sends.map((s) => s.errno)).toEqual(['', '', '']);
		expect(o.connect).toMatchObject({ ret: 0, errno: '' });
		expect(o.installAtMs).toBeGreaterThan(40);
		expect(o.installAtMs).toBeLessThan(200);
	});

	it('reads the series: every datagram echoed, the first reply right after the installation', () => {
		const o = outcomeIn(PATCHED, udp, RESOLVE_1.id);
		expect(o).toMatchObject({ complete: true, sent: 3, received: 3, lost: 0, lostIds: [] });
		expect(o.firstReplyMs! - o.installAtMs!).toBeLessThan(60);
	});

	it('marks a probe that exited non-zero, or whose TAP stops early, as a failed run', () => {
		const raw = rawRun(STOCK, udp, 'larval_drop=1');
		expect(outcomeOfRaw(udp, probeFailed(raw)).problems).toEqual(['probe exited 1']);
		const cut = raw.replace(/^ok 6 - recv[\s\S]*?(?=^=== probe-stderr$)/m, '');
		const o = outcomeOfRaw(udp, cut);
		expect(o.complete).toBe(false);
		expect(o.problems[0]).toMatch(/probe TAP incomplete/);
		expect(o.sent).toBe(0);
	});
});

describe('mutation guard', () => {
	it('the oracle holds before any mutation', () => {
		expect(oracleFailures()).toEqual([]);
	});

	// Each building block made to accept every run (withCheckPassing) must make the oracle fail somewhere new.
	it.each(CHECK_NAMES)('%s made to pass everything fails the oracle', (name) => {
		const before = new Set(oracleFailures());
		expect(withCheckPassing(name, () => oracleFailures()).filter((f) => !before.has(f))).not.toEqual([]);
	});
});
