import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ESP_PROPOSAL, IKE_PROPOSAL, ipsecSecrets, NSS_TEMPLATE, plutoInstances, startPlutos, stopPlutos, writePlutoConfigs } from '../../harness/km/libreswan.js';
import { parsePlutoLog, plutoNegotiationOf } from '../../harness/km/pluto-log.js';
import { transportTopology, tunnelTopology } from '../../harness/net/topology.js';
import { LIBRESWAN_CASES, STRONGSWAN_CASES } from '../../harness/suite/ike-cases.js';
import { caseRunOf } from '../../harness/suite/lab.js';
import { describeOutcome, narrate, outcomeOf } from '../../harness/suite/outcome.js';

const fixture = (name: string) => readFileSync(join(__dirname, '../fixtures', name), 'utf8');

describe('libreswan configuration', () => {
	it('gives each side of the transport topology its own instance, near side first, every path in its directory', () => {
		const [a, b] = plutoInstances(transportTopology(), '/x');
		expect([a!.ns, a!.side, a!.dir, b!.ns, b!.side, b!.dir]).toEqual(['A', 'near', '/x/pluto-A', 'B', 'far', '/x/pluto-B']);
		for (const key of ['logfile=/x/pluto-A/pluto.log', 'nssdir=/x/pluto-A/nss', 'secretsfile=/x/pluto-A/ipsec.secrets', 'ipsecdir=/x/pluto-A', 'logtime=yes', 'logappend=no', 'dnssec-enable=no']) {
			expect(a!.ipsecConf).toContain(`\t${key}\n`);
		}
		expect(b!.ipsecConf).toContain('\tlogfile=/x/pluto-B/pluto.log\n');
	});

	it('writes one IKEv2 PSK connection per family, on demand, with strongSwan\'s proposals in libreswan\'s syntax', () => {
		const [a, b] = plutoInstances(transportTopology(), '/x');
		expect(IKE_PROPOSAL).toBe('aes_gcm128-sha2_256-modp2048');
		expect(ESP_PROPOSAL).toBe('aes_gcm128');
		expect(a!.ipsecConf).toMatch(/conn v4\n\tikev2=insist\n\tauthby=secret\n\tleft=192\.0\.2\.1\n\tright=192\.0\.2\.2\n\ttype=transport\n/);
		expect(a!.ipsecConf).toMatch(/conn v6\n\tikev2=insist\n\tauthby=secret\n\tleft=2001:db8:1::1\n\tright=2001:db8:1::2\n/);
		expect(a!.ipsecConf.match(/\tauto=ondemand\n/g)).toHaveLength(2);
		expect(a!.ipsecConf.match(/\tike=aes_gcm128-sha2_256-modp2048\n\tesp=aes_gcm128\n/g)).toHaveLength(2);
		expect(a!.ipsecConf.match(/updown=%disabled/g)).toHaveLength(4);
		// Transport mode: no subnets.
		expect(a!.ipsecConf).not.toContain('subnet');
		// The far side has itself on the left.
		expect(b!.ipsecConf).toContain('\tleft=192.0.2.2\n\tright=192.0.2.1\n');
		expect(ipsecSecrets(transportTopology().ike)).toContain('192.0.2.1 192.0.2.2 : PSK "larval-test-psk"\n2001:db8:1::1 2001:db8:1::2 : PSK "larval-test-psk"\n');
	});

	it('protects the hosts\' subnets between the gateways of the tunnel topology', () => {
		const [ga, gb] = plutoInstances(tunnelTopology(), '/x');
		expect([ga!.ns, gb!.ns]).toEqual(['GA', 'GB']);
		expect(ga!.ipsecConf).toContain('\tleft=192.0.2.1\n\tright=192.0.2.2\n\tleftsubnet=198.51.100.0/24\n\trightsubnet=203.0.113.0/24\n\ttype=tunnel\n');
		expect(gb!.ipsecConf).toContain('\tleftsubnet=2001:db8:b::/64\n\trightsubnet=2001:db8:a::/64\n');
	});

	it('copies the NSS template per instance, starts pluto with its own run directory and waits for its trap policies, bounded', () => {
		const ps = plutoInstances(transportTopology(), '/x');
		expect(writePlutoConfigs(ps).join('\n')).toContain(`cp -a ${NSS_TEMPLATE} /x/pluto-A/nss`);
		const start = startPlutos(ps).join('\n');
		expect(start).toContain('ip netns exec A setsid /usr/libexec/ipsec/pluto --nofork --config /x/pluto-A/ipsec.conf --rundir /x/pluto-A/run </dev/null >/dev/null 2>/x/pluto-A/pluto.err & pluto0=$!');
		expect(start).toContain('ip -n B xfrm policy list dir out src 192.0.2.2/32 dst 192.0.2.1/32 | grep -q tmpl && ip -n B xfrm policy list dir out src 2001:db8:1::2/128 dst 2001:db8:1::1/128 | grep -q tmpl');
		expect(start).toMatch(/\[ \$i -gt 500 \] && \{ echo "=== not-ready"; echo "pluto in A: no trap policies after 10 s/);
		expect(start).toContain('kill -0 $pluto1 2>/dev/null || { echo "=== not-ready"; echo "pluto in B: it exited');
		expect(stopPlutos(ps).join('\n')).toContain('/x/pluto-B/run/pluto.pid');
	});
});

describe("pluto's log", () => {
	it('reads the negotiation a trap started from a real guest log', () => {
		const n = plutoNegotiationOf(parsePlutoLog(fixture('pluto-patched-transport-A.txt')));
		// 17:28:11.556837 initiate on-demand ... 17:28:11.824534 "v4" #2: initiator established Child SA
		expect(n).toEqual({ ms: 267.697, acquires: 1, established: ['v4 #2'], failures: [] });
	});

	// A host run (not a guest) whose kernel had no AES-GCM for ESP: B could not add its SA and answered IKE_AUTH with TS_UNACCEPTABLE.
	it('says when no Child SA came, and why, from a real log', () => {
		const n = plutoNegotiationOf(parsePlutoLog(fixture('pluto-child-sa-failed-A.txt')));
		expect(n.ms).toBeNull();
		expect(n.acquires).toBe(2);
		expect(n.established).toEqual([]);
		expect(n.failures).toEqual(['"v4" #2: IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE', '"v6" #4: IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE']);
	});

	it('reads its stamps to the microsecond, across midnight, and ignores lines that are not log lines', () => {
		const lines = parsePlutoLog('garbage\nDec 31 23:59:59.999500: initiate on-demand for packet x\nJan  1 00:00:00.000250: y\nDec  1 00:00:00.000001: "v4" #2: initiator established Child SA using #1; IPsec transport\n');
		expect(lines.map((l) => l.text)).toEqual(['initiate on-demand for packet x', 'y', '"v4" #2: initiator established Child SA using #1; IPsec transport']);
		const [dec31, jan1, dec1] = lines.map((l) => l.tMs);
		expect(dec31! - dec1!).toBeCloseTo(30 * 86_400_000 + 86_399_999.499, 3);
		// The year is not in the stamp: New Year reads backwards, so no negotiation is made of it.
		expect(jan1! < dec31!).toBe(true);
		expect(plutoNegotiationOf([])).toEqual({ ms: null, acquires: 0, established: [], failures: [] });
	});

	it('takes the first Child SA established after the first ACQUIRE, by connection and state', () => {
		const n = plutoNegotiationOf(parsePlutoLog([
			'Dec  1 10:00:00.000000: "v6" #9: responder established Child SA using #8; IPsec transport',
			'Dec  1 10:00:01.000000: initiate on-demand for packet 192.0.2.1:1-UDP->192.0.2.2:7000',
			'Dec  1 10:00:01.123456: "v4" #2: initiator established Child SA using #1; IPsec transport',
		].join('\n')));
		expect(n).toEqual({ ms: 123.456, acquires: 1, established: ['v6 #9', 'v4 #2'], failures: [] });
	});
});

describe('a libreswan case run', () => {
	it('reads each side\'s log with pluto\'s parser and names libreswan in what it reports', () => {
		const far = 'Dec  1 17:28:11.700000: "v4" #1: AUTHENTICATION_FAILED\n';
		const out = `=== probe-status\n0\n=== ike-0\n${fixture('pluto-patched-transport-A.txt')}=== ike-1\n${far}`;
		const o = outcomeOf(caseRunOf(out, { during: 0, ike: { daemon: 'libreswan', ns: ['A', 'B'] } }));
		expect(o.ike).toMatchObject({ daemon: 'libreswan', ms: 267.697, acquires: 1, established: ['v4 #2'], failures: ['B: "v4" #1: AUTHENTICATION_FAILED'] });
		expect(o.ike!.tail).toMatch(/initiator established Child SA/);
		expect(describeOutcome(o)).toContain('IKE 268 ms');
		expect(narrate(o)).toContain('libreswan: 1 ACQUIRE, CHILD_SA established 268 ms after the first');
		// A failure on the far side fails the case, naming the daemon and its log.
		const violations = LIBRESWAN_CASES[0]!.resolved!(o);
		expect(violations.find((v) => v.startsWith('libreswan did not establish the CHILD_SA: B: "v4" #1: AUTHENTICATION_FAILED; the tail of pluto\'s log:'))).toBeDefined();
	});

	it('has strongSwan\'s cases, prefixed libreswan-', () => {
		expect(LIBRESWAN_CASES.map((c) => c.id)).toEqual(STRONGSWAN_CASES.map((c) => c.id.replace(/^strongswan/, 'libreswan')));
		expect(LIBRESWAN_CASES.map((c) => c.id)).toEqual(['libreswan-ping', 'libreswan-tcp-connect', 'libreswan-udp', 'libreswan-udp6', 'libreswan-tunnel-ping', 'libreswan-tunnel-tcp-connect', 'libreswan-tunnel-udp', 'libreswan-tunnel-udp6']);
	});
});
