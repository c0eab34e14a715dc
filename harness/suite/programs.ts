import { LarvalError } from '../util/errors.js';
import { shellJoin } from '../util/shell.js';
import { keyingTable, topology } from '../net/topology.js';
import type { Family } from '../net/xfrm.js';
import type { Vm } from '../vm/vm.js';
import { background, ECHO_PORT, kmArgs, nearReset, RUN_DIR, setUpOrNotReady, splitSections, stopKeyManagers, UPTIME_FN, waitForReady } from './lab.js';
import { num } from './outcome.js';

/**
 * Unmodified Debian programs through a trap policy (issue #15, "real
 * programs"): what a user of dig, getent (glibc's resolver), curl and socat
 * sees when the first packet meets a policy whose SA does not exist yet, on
 * stock and on the series.  The transport topology's A and B, with B's own
 * addresses behind the policy and a second pair of addresses on B that no
 * policy covers (a name server reachable in clear, as on most hosts); the
 * test key manager answering 50 ms after each ACQUIRE, or never.
 *
 * Each run measures the program's wall time on the guest's clock and
 * whether it printed the answer; the key manager's log proves the policy
 * covered the program's traffic (an ACQUIRE was sent), so a run that
 * passed the policy by is no evidence either way.
 */

/** The programs copied from the host into the guest (harness/image/build.ts hostToolsOverlay: /usr/local/bin). */
export const PROGRAM_TOOLS = ['dig', 'getent', 'curl', 'socat', 'dnsmasq'] as const;
const BIN = '/usr/local/bin';

const TOPO = topology('transport');
const NEAR = TOPO.client;
const FAR = TOPO.server;
/** B's addresses outside every policy (the policies cover B's /32 and /128 only): a name server in clear. */
const CLEAR = { 4: '192.0.2.53', 6: '2001:db8:1::53' } as const;
const HTTP_PORT = 8080;
const HTTP_BODY = 'larval-http';
const UDP_PAYLOAD = 'larval:1:socat';
/** The names B's dnsmasq serves: one address, and an address per family (glibc sorts those by connect()ing UDP sockets). */
export const NAMES = { one: 'one.larval.test', two: 'two.larval.test' } as const;
/** net.core.xfrm_acq_expires in A: a program asleep on an acquire would take this long (the 2026 revision's getaddrinfo() stall). */
export const ACQ_EXPIRES_S = 3;
/** glibc's resolver: one second per try, two tries (the defaults are 5 s and 2). */
const RESOLV_OPTIONS = 'options timeout:1 attempts:2';
/** Every program is killed after this long: nothing here should take more than its own 2-4 s timeouts. */
const PROGRAM_BOUND_S = 15;

export type KmChoice = 'answers' | 'silent';

const addr = (family: Family, h: { v4: string; v6: string }) => (family === 4 ? h.v4 : h.v6);
const url = (family: Family) => `http://${family === 4 ? FAR.v4 : `[${FAR.v6}]`}:${HTTP_PORT}/hello.txt`;

export interface ProgramCase {
	id: string;
	title: string;
	family: Family;
	km: KmChoice;
	argv: string[];
	/** A's /etc/resolv.conf name server, for programs that use glibc's resolver. */
	nameserver?: string;
	/** What the program prints when it got its answer. */
	answer: RegExp;
	/** What a user sees on each kernel: the answer or not (the series with xfrm_resolve=1). */
	answered: { stock: boolean; patched: boolean };
	/**
	 * Whether the program ends as soon as it has its answer, so that its
	 * time says when the answer came (socat waits out its -t instead).
	 */
	endsWithAnswer: boolean;
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const re = (s: string) => new RegExp(escaped(s));
/** A line that is @s alone: dig's errors name the server, whose address is also the answer. */
const line = (s: string) => new RegExp(`^${escaped(s)}$`, 'm');

function dig(family: Family): ProgramCase {
	const [type, expect] = family === 4 ? ['A', FAR.v4] : ['AAAA', FAR.v6];
	return {
		id: `dig${family === 6 ? '6' : ''}`,
		title: `dig, one try of 2 s, to a name server behind the trap policy over IPv${family}`,
		family,
		km: 'answers',
		argv: [`${BIN}/dig`, '+tries=1', '+time=2', '+short', `@${addr(family, FAR)}`, NAMES.two, type],
		answer: line(expect),
		// Stock drops the query that met the missing SA; dig does not try again.
		answered: { stock: false, patched: true },
		endsWithAnswer: true,
	};
}

function getentBehindTrap(family: Family, km: KmChoice): ProgramCase {
	return {
		id: `getent${family === 6 ? '6' : ''}-trap${km === 'silent' ? '-silent' : ''}`,
		title: `getent ahosts (glibc's resolver, ${RESOLV_OPTIONS}) with the name server behind the trap policy over IPv${family}, key manager ${km === 'answers' ? 'answering' : 'silent'}`,
		family,
		km,
		argv: [`${BIN}/getent`, 'ahosts', NAMES.one],
		nameserver: addr(family, FAR),
		answer: re(FAR.v4),
		// Stock loses the first queries and answers at glibc's retry a second later.
		answered: { stock: km === 'answers', patched: km === 'answers' },
		endsWithAnswer: true,
	};
}

function getentSorting(family: Family): ProgramCase {
	return {
		id: `getent${family === 6 ? '6' : ''}-sort-silent`,
		title: `getent ahosts for a name with an A and an AAAA record behind the trap policy, name server in clear over IPv${family}, key manager silent: glibc connect()s a UDP socket to each address to sort them`,
		family,
		km: 'silent',
		argv: [`${BIN}/getent`, 'ahosts', NAMES.two],
		nameserver: CLEAR[family],
		answer: new RegExp(`${re(FAR.v4).source}[\\s\\S]*${re(FAR.v6).source}|${re(FAR.v6).source}[\\s\\S]*${re(FAR.v4).source}`),
		answered: { stock: true, patched: true },
		endsWithAnswer: true,
	};
}

function curl(family: Family, km: KmChoice): ProgramCase {
	return {
		id: `curl${family === 6 ? '6' : ''}${km === 'silent' ? '-silent' : ''}`,
		title: `curl (connect timeout 3 s) to an HTTP server behind the trap policy over IPv${family}, key manager ${km === 'answers' ? 'answering' : 'silent'}`,
		family,
		km,
		argv: [`${BIN}/curl`, '-sS', '--connect-timeout', '3', '--max-time', '6', url(family)],
		answer: re(HTTP_BODY),
		// Stock: the SYN is lost and TCP retransmits it a second later.
		answered: { stock: km === 'answers', patched: km === 'answers' },
		endsWithAnswer: true,
	};
}

function socat(family: Family): ProgramCase {
	return {
		id: `socat${family === 6 ? '6' : ''}-udp`,
		title: `socat sending one UDP datagram (connected socket) to an echo server behind the trap policy over IPv${family}, waiting 1.5 s for the reply`,
		family,
		km: 'answers',
		argv: ['/bin/sh', '-c', `echo ${UDP_PAYLOAD} | ${BIN}/socat -t 1.5 - UDP${family}:${family === 4 ? FAR.v4 : `[${FAR.v6}]`}:${ECHO_PORT}`],
		answer: re(UDP_PAYLOAD),
		// Stock drops the one datagram; the series holds it (the first send() of a blocking socket waits for the SA).
		answered: { stock: false, patched: true },
		endsWithAnswer: false,
	};
}

export const PROGRAM_CASES: readonly ProgramCase[] = [
	dig(4),
	dig(6),
	getentBehindTrap(4, 'answers'),
	getentBehindTrap(6, 'answers'),
	getentBehindTrap(4, 'silent'),
	getentSorting(4),
	getentSorting(6),
	curl(4, 'answers'),
	curl(6, 'answers'),
	curl(4, 'silent'),
	socat(4),
	socat(6),
];

export interface ProgramRun {
	caseId: string;
	status: number;
	/** Wall time of the program on the guest's clock, 10 ms resolution. */
	seconds: number;
	stdout: string;
	stderr: string;
	/** ACQUIREs the key manager heard during the run. */
	acquires: number;
	answered: boolean;
	/**
	 * The same program run again at once, its SA now in place (where the
	 * key manager answers and the program ends with its answer): what it
	 * costs on this machine, at this moment, without any acquire, to
	 * measure the first run against.
	 */
	keyed?: { status: number; seconds: number; answered: boolean };
}

const DIR = `${RUN_DIR}/programs`;
const KEYS = `${DIR}/keys`;
const KM_LOG = `${DIR}/km.log`;

/** The device that holds @address in @ns (the topology does not export its device names). */
const devOf = (ns: string, address: string) => `$(ip -n ${ns} -o addr show to ${address} | awk '{ print $2; exit }')`;

/** Until @what answers in @ns (locally: B's own addresses never meet a policy), at most 10 s. */
function untilAnswers(ns: string, probe: string, what: string): string {
	return `i=0; until ip netns exec ${ns} ${probe} >/dev/null 2>&1; do i=$((i + 1)); [ $i -gt 100 ] && { echo "=== not-ready"; echo "${what} did not answer in 10 s"; cat ${DIR}/*.err 2>/dev/null | tail -n 20; exit 90; }; sleep 0.1; done`;
}

/**
 * Shell, once per guest: the topology, B's addresses in clear, and on B a
 * name server (dnsmasq), an HTTP server (busybox httpd) and UDP echo
 * servers, each checked to answer locally before any run.
 */
export function programsSetUpScript(): string {
	const far = FAR.ns;
	const dnsArgs = [
		`${BIN}/dnsmasq`, '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--bind-interfaces', '--user=root', '--group=root',
		`--pid-file=${DIR}/dnsmasq.pid`, `--log-facility=${DIR}/dnsmasq.log`, '--log-queries',
		...[FAR.v4, FAR.v6, CLEAR[4], CLEAR[6]].map((a) => `--listen-address=${a}`),
		`--host-record=${NAMES.one},${FAR.v4}`,
		`--host-record=${NAMES.two},${FAR.v4},${FAR.v6}`,
	];
	const echo = (family: Family) => ['larval-echo', '--family', String(family), '--proto', 'udp', '--port', String(ECHO_PORT), '--log', `${DIR}/echo${family}.log`, '--max-runtime-s', '7200'];
	const setup = [
		...TOPO.setup,
		`ip -n ${far} addr add ${CLEAR[4]}/24 dev ${devOf(far, FAR.v4)}`,
		// Deprecated: never the source B picks for its own replies (which must come from the address behind the policy).
		`ip -n ${far} -6 addr add ${CLEAR[6]}/64 dev ${devOf(far, FAR.v4)} nodad preferred_lft 0`,
	];
	return [
		'set -u',
		`rm -rf ${DIR}; mkdir -p ${DIR}/www /etc/netns/${NEAR.ns}`,
		...setUpOrNotReady(setup, `${DIR}/setup.err`),
		`cat > ${KEYS} <<'KEYS'\n${keyingTable(TOPO)}KEYS`,
		// ip netns exec binds /etc/netns/A/* over files that must exist.
		'touch /etc/resolv.conf',
		`printf 'hosts: dns\\n' > /etc/netns/${NEAR.ns}/nsswitch.conf`,
		`echo ${HTTP_BODY} > ${DIR}/www/hello.txt`,
		background(far, dnsArgs, `${DIR}/dnsmasq.err`),
		...[FAR.v4, `[${FAR.v6}]`].map((a, i) => background(far, ['busybox', 'httpd', '-f', '-p', `${a}:${HTTP_PORT}`, '-h', `${DIR}/www`], `${DIR}/httpd${i}.err`)),
		...([4, 6] as const).map((f) => background(far, echo(f), `${DIR}/echo${f}.log.err`)),
		...([4, 6] as const).map((f) => waitForReady(`${DIR}/echo${f}.log`, `larval-echo (UDP, IPv${f}) did not start`)),
		untilAnswers(far, shellJoin([`${BIN}/dig`, '+tries=1', '+time=1', '+short', `@${CLEAR[4]}`, NAMES.one]).concat(` | grep -q ${FAR.v4}`), 'dnsmasq'),
		untilAnswers(far, shellJoin([`${BIN}/curl`, '-sf', '--max-time', '2', url(4)]), 'busybox httpd'),
		'echo "=== ready"',
	].join('\n');
}

/** Shell for one run: A back to policies only, its sysctls, the key manager, the program timed, the key manager's ACQUIREs counted. */
export function programRunScript(c: ProgramCase): string {
	const ns = NEAR.ns;
	return [
		'set -u',
		UPTIME_FN,
		...nearReset(TOPO),
		`ip netns exec ${ns} sysctl -qw net.core.xfrm_acq_expires=${ACQ_EXPIRES_S}`,
		// Stock has no such switch; on the series the claim is about xfrm_resolve=1.
		`if [ -e /proc/sys/net/core/xfrm_resolve ]; then ip netns exec ${ns} sysctl -qw net.core.xfrm_resolve=1; echo "=== resolve"; echo 1; fi`,
		`printf 'nameserver %s\\n${RESOLV_OPTIONS}\\n' ${c.nameserver ?? '127.0.0.1'} > /etc/netns/${ns}/resolv.conf`,
		`rm -f ${KM_LOG}`,
		background(ns, kmArgs(KEYS, KM_LOG, c.km === 'answers' ? { delayMs: 50 } : { never: true }), `${KM_LOG}.err`),
		waitForReady(KM_LOG, 'larval-km did not start'),
		`t0=$(up); ip netns exec ${ns} timeout ${PROGRAM_BOUND_S} ${shellJoin(c.argv)} >${DIR}/out 2>${DIR}/err; rc=$?; t1=$(up)`,
		// socat waits out its -t whatever comes: a second run would measure nothing.
		...(c.km === 'answers' && c.endsWithAnswer
			? [`t2=$(up); ip netns exec ${ns} timeout ${PROGRAM_BOUND_S} ${shellJoin(c.argv)} >${DIR}/keyed.out 2>&1; rc2=$?; t3=$(up)`, `echo "=== keyed"; echo "$rc2 $t2 $t3" | awk '{ printf "%d %.2f\\n", $1, $3 - $2 }'; cat ${DIR}/keyed.out`]
			: []),
		stopKeyManagers(),
		`echo "=== status"; echo "$rc $t0 $t1" | awk '{ printf "%d %.2f\\n", $1, $3 - $2 }'`,
		`echo "=== stdout"; cat ${DIR}/out`,
		`echo "=== stderr"; cat ${DIR}/err`,
		`echo "=== acquires"; grep -c " ACQUIRE " ${KM_LOG} || true`,
	].join('\n');
}

export function parseProgramRun(c: ProgramCase, output: string): ProgramRun {
	const s = splitSections(output);
	if (s.has('not-ready')) throw new LarvalError(`${c.id}: the run's set-up failed in the guest: ${s.get('not-ready')!.trim()}`);
	const [status, seconds] = (s.get('status') ?? '').trim().split(/\s+/);
	const stdout = (s.get('stdout') ?? '').trim();
	const keyedText = s.get('keyed');
	let keyed: ProgramRun['keyed'];
	if (keyedText !== undefined) {
		const [head = '', ...rest] = keyedText.split('\n');
		const [ks, kt] = head.trim().split(/\s+/);
		keyed = { status: num(ks), seconds: num(kt), answered: c.answer.test(rest.join('\n')) };
	}
	return {
		caseId: c.id,
		status: num(status),
		seconds: num(seconds),
		stdout,
		stderr: (s.get('stderr') ?? '').trim(),
		acquires: num((s.get('acquires') ?? '').trim(), 0),
		answered: c.answer.test(stdout),
		keyed,
	};
}

export async function setUpPrograms(vm: Vm): Promise<void> {
	const r = await vm.exec(programsSetUpScript(), { timeoutMs: 120_000 });
	const s = splitSections(r.stdout);
	if (r.code !== 0 || !s.has('ready')) {
		throw new LarvalError(`setting up the programs' servers failed: ${s.get('not-ready')?.trim() ?? `status ${r.code}`}`, `${r.stdout}${r.stderr}`.trim());
	}
}

export async function runProgram(vm: Vm, c: ProgramCase): Promise<ProgramRun> {
	const r = await vm.exec(programRunScript(c), { timeoutMs: (PROGRAM_BOUND_S + 30) * 1000 });
	if (r.code !== 0) throw new LarvalError(`${c.id}: the run failed in the guest (status ${r.code})`, `${r.stdout}${r.stderr}`.trim());
	return parseProgramRun(c, r.stdout);
}

/**
 * How much slower than stock a program may be on the series before the
 * suite calls it a regression: TCG timing noise on a loaded 2-core host
 * (each figure is one run, on the guest's clock, in 10 ms steps).
 */
export const SLOWER_NOISE_S = 0.5;
/**
 * "At once", for a program whose key manager answers in 50 ms: its run
 * through the trap policy may take what the same program takes with the SA
 * in place (measured right after, on the same machine: dig alone takes
 * 0.4-0.8 s to start under TCG on a loaded host), plus the key manager's
 * 50 ms, plus this much.  Stock's retries come a second later.
 */
export const AT_ONCE_SLACK_S = 0.4;
const KM_DELAY_S = 0.05;

/** What contradicts the case's claim on @kernel (stock or the series). */
export function programViolations(c: ProgramCase, kernel: 'stock' | 'patched', r: ProgramRun): string[] {
	const out: string[] = [];
	if (r.acquires < 1) out.push(`the key manager heard no ACQUIRE: the policy did not cover ${c.id}'s traffic, so this run shows nothing`);
	if (r.answered !== c.answered[kernel]) {
		out.push(`${c.id} ${r.answered ? 'got its answer' : 'got no answer'} (status ${r.status}, ${r.seconds.toFixed(2)} s${r.stderr ? `, stderr: ${r.stderr.split('\n')[0]}` : ''}), expected ${c.answered[kernel] ? 'the answer' : 'none'} on ${kernel}`);
	}
	if (kernel === 'patched' && c.km === 'answers' && c.endsWithAnswer) {
		if (!r.keyed?.answered) out.push(`${c.id} run again with its SA in place got no answer (status ${r.keyed?.status ?? '?'}): no baseline to measure the first run against`);
		else if (!(r.seconds <= r.keyed.seconds + KM_DELAY_S + AT_ONCE_SLACK_S)) {
			out.push(`${c.id} took ${Number.isFinite(r.seconds) ? r.seconds.toFixed(2) : '?'} s through the trap policy against ${r.keyed.seconds.toFixed(2)} s with its SA in place: more than the key manager's 50 ms and ${AT_ONCE_SLACK_S} s over it`);
		}
	}
	return out;
}

/** The suite's comparison: the series must not make a program slower than stock beyond noise. */
export function slowerThanStock(c: ProgramCase, stock: ProgramRun, patched: ProgramRun): string[] {
	return patched.seconds <= stock.seconds + SLOWER_NOISE_S
		? []
		: [`${c.id}: ${patched.seconds.toFixed(2)} s on the series against ${stock.seconds.toFixed(2)} s on stock (noise allowed: ${SLOWER_NOISE_S} s)`];
}

export function describeProgramRun(r: ProgramRun): string {
	const keyed = r.keyed ? `; again with the SA ${r.keyed.answered ? 'answered' : 'no answer'} in ${Number.isFinite(r.keyed.seconds) ? r.keyed.seconds.toFixed(2) : '?'} s` : '';
	return `${r.caseId}: ${r.answered ? 'answered' : 'no answer'} in ${Number.isFinite(r.seconds) ? r.seconds.toFixed(2) : '?'} s, status ${r.status}, ${r.acquires} ACQUIRE(s)${keyed}`;
}
