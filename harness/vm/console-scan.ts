/**
 * Finds kernel trouble in a serial console capture.  Each finding carries the
 * report that follows the first line (up to the end-of-trace marker or a
 * bound), which is what a developer wants pasted into a bug.
 */
export type FindingKind =
	| 'panic' | 'bug' | 'oops' | 'warning' | 'kasan' | 'kcsan' | 'lockdep' | 'hung-task' | 'rcu-stall' | 'call-trace' | 'ubsan'
	| 'kmemleak' | 'ref-tracker' | 'netdev-refcount';

export interface ConsoleFinding {
	kind: FindingKind;
	/** 1-based line number in the capture. */
	line: number;
	text: string;
	report: string;
}

/**
 * First match wins, so the specific kinds come before `bug` and `warning`
 * (a KASAN report starts "BUG: KASAN:", a lockdep one "WARNING: possible
 * ...").  The set is netdev CI's (NIPA): what its test runs fail on.
 */
const PATTERNS: ReadonlyArray<readonly [FindingKind, RegExp]> = [
	['panic', /Kernel panic - not syncing/],
	['kasan', /BUG: KASAN:|KASAN: /],
	['kcsan', /BUG: KCSAN:/],
	['lockdep', /possible (recursive|circular) locking|inconsistent lock state|suspicious RCU usage|possible irq lock inversion|bad unlock balance|held lock freed|lock held when returning to user space/],
	['hung-task', /INFO: task .* blocked for more than/],
	['rcu-stall', /rcu: INFO: .*detected (expedited )?stalls?\b/],
	['ubsan', /UBSAN: /],
	// kmemleak's own line after a scan that found something, and a report (kmemleak.verbose=1 prints them on the console).
	['kmemleak', /^kmemleak: \d+ new suspected memory leaks|^(kmemleak: )?unreferenced object 0x[0-9a-f]+ \(size \d+\):/],
	// lib/ref_tracker.c: a tracked reference (netns, netdev) still held at the tracker's exit, with its stack.
	['ref-tracker', /^ref_tracker: /],
	// net/core/dev.c: a device being unregistered whose references never drop (the netns teardown hangs).
	['netdev-refcount', /unregister_netdevice: waiting for .* to become free/],
	['bug', /\bBUG: |kernel BUG at /],
	['oops', /\bOops: |general protection fault/],
	['warning', /\bWARNING: /],
	['call-trace', /Call Trace:/],
];

const REPORT_END = /---\[ end (trace|Kernel panic)|^\s*$/;
const REPORT_MAX_LINES = 60;
/**
 * Reports that hold blank lines (or none before the next report): a
 * sanitizer's ends at its closing line of '=', lockdep's and a hung task's
 * at the end of the stack dump.
 */
const STACK_END = /^\s*<\/TASK>$/;
const LONG_REPORT_END: Partial<Record<FindingKind, RegExp>> = { kasan: /^={20,}$/, kcsan: /^={20,}$/, lockdep: STACK_END, 'hung-task': STACK_END };
const LONG_REPORT_MAX_LINES = 150;

/** Strips the printk timestamp and caller prefix so patterns match the message. */
function message(line: string): string {
	return line.replace(/^\[\s*\d+\.\d+\]\s*(\[\s*[CT]\d+\]\s*)?/, '');
}

export function scanConsole(text: string): ConsoleFinding[] {
	const lines = text.split(/\r?\n/);
	const findings: ConsoleFinding[] = [];
	// A Call Trace inside a report already found is part of that report, and so is a repeat of its first line
	// (unregister_netdevice every 10 s, kmemleak's summary then its objects).
	let coveredUntil = -1;
	let coveredKind: FindingKind | null = null;
	for (let i = 0; i < lines.length; i++) {
		const msg = message(lines[i]!);
		// Guest userspace echoes through /dev/kmsg; its text is never a kernel report.
		if (msg.startsWith('larval-init:') || msg.startsWith('larval:')) continue;
		const hit = PATTERNS.find(([, re]) => re.test(msg));
		if (!hit) continue;
		const [kind] = hit;
		if ((kind === 'call-trace' || kind === coveredKind) && i <= coveredUntil) continue;
		const endRe = LONG_REPORT_END[kind] ?? REPORT_END;
		const maxLines = LONG_REPORT_END[kind] ? LONG_REPORT_MAX_LINES : REPORT_MAX_LINES;
		let end = i + 1;
		while (end < lines.length && end - i < maxLines) {
			const m = message(lines[end]!);
			end++;
			if (endRe.test(m)) break;
		}
		findings.push({ kind, line: i + 1, text: msg.trim(), report: lines.slice(i, end).join('\n') });
		coveredUntil = end - 1;
		coveredKind = kind;
	}
	return findings;
}

/** How far back the tail of a dead guest's console reaches to take in the whole of its last report. */
const TAIL_REACH_LINES = 200;

/**
 * The last n lines of a console, reaching further back (up to
 * TAIL_REACH_LINES) when the last kernel report began before them: a
 * distro kernel's panic is 45 lines and more (its call trace lists every
 * stale frame, and no end marker follows when it reboots at once), so the
 * last 50 lines alone can lose the panic's reason, the one line a reader
 * of the error needs.
 */
export function consoleTail(text: string, n: number): string {
	const lines = text.split(/\r?\n/);
	if (lines.at(-1) === '') lines.pop();
	let start = Math.max(0, lines.length - n);
	// Same split as scanConsole's, so its line numbers index @lines.
	const last = scanConsole(text).at(-1);
	if (last && last.line - 1 < start && lines.length - (last.line - 1) <= TAIL_REACH_LINES) start = last.line - 1;
	return lines.slice(start).join('\n');
}

export function formatFindings(findings: readonly ConsoleFinding[]): string {
	return findings.map((f) => `${f.kind} at console line ${f.line}: ${f.text}`).join('\n');
}

/**
 * The two functions a KCSAN report says raced ("data-race in A / B"; one
 * name when both accesses were in the same function), offsets stripped.
 */
export function kcsanRacers(f: ConsoleFinding): string[] {
	const m = /data-race in (.+)$/.exec(f.text);
	return m ? m[1]!.split(' / ').map((x) => x.trim().replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+$/, '')).filter(Boolean) : [];
}

/**
 * Function names of the networking stack, the code the series changes and
 * calls into (net/, the xfrm core, sockets, devices, netfilter).  Raw
 * sockets' names are spelled out: raw_spin_*() and friends are locking.
 * Only the report's title counts, not its stacks: under the interrupt
 * watcher the other access's stack can be a stale one (the second report
 * of tests/fixtures/console-race-core-hrtimer.txt loops through
 * xfrm_larval_output() and lockdep for a read of an hrtimer sleeper).
 */
const NETWORKING_FUNCTION = /^_*(xfrm|larval|udp|tcp|inet|ip6?_|ipv[46]|raw_(send|recv|rcv|v[46]|hash|bind|close|err|icmp|seq|destroy|init|ioctl|[gs]etsockopt)|rawv6_|raw6_|ping|sk_|sock|skb|dst|neigh|netif|netdev|dev_|napi|gro|nf_|nft_|veth|rt6?_|fib|icmp|esp|l2tp|datagram|ndisc|arp|net_|ip_)/;

/**
 * A KCSAN report whose racing functions are both outside the networking
 * stack: a data race in the core kernel (the race flavour's first run
 * found hrtimer_wakeup() against __rcu_read_unlock() and against a
 * spin_unlock_bh(), an hrtimer sleeper's plain `task` field written from
 * the timer interrupt on the same CPU), which no change to net/ can cause
 * or fix.  Suites record such reports with the console and say so, and
 * fail on every other finding.  A report naming any networking function,
 * or that cannot be read, fails.
 */
export function outsideNetworking(f: ConsoleFinding): boolean {
	if (f.kind !== 'kcsan') return false;
	const racers = kcsanRacers(f);
	return racers.length > 0 && racers.every((r) => !NETWORKING_FUNCTION.test(r));
}

