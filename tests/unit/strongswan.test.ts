import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { negotiationOf, parseCharonLog } from '../../harness/km/charon-log.js';
import { tailLines } from '../../harness/util/errors.js';
import { CHARON_PLUGINS, charonInstances, pluginPaths, startCharons, stopCharons, strongswanConf, swanctlConf } from '../../harness/km/strongswan.js';
import { transportTopology, tunnelTopology } from '../../harness/net/topology.js';

const fixture = (name: string) => readFileSync(join(__dirname, '../fixtures', name), 'utf8');

describe('strongSwan configuration', () => {
	it('gives each side of the transport topology its own instance, near side first', () => {
		const [a, b] = charonInstances(transportTopology(), '/x');
		expect([a!.ns, a!.dir, b!.ns, b!.dir]).toEqual(['A', '/x/charon-A', 'B', '/x/charon-B']);
		expect(a!.strongswanConf).toContain('path = /x/charon-A/charon.log');
		expect(a!.strongswanConf).toContain(`load = ${CHARON_PLUGINS.join(' ')}`);
		expect(a!.strongswanConf).toMatch(/load_modular = no/);
	});

	it('writes one IKEv2 PSK connection per family with a trap CHILD_SA between the hosts', () => {
		const a = swanctlConf(transportTopology().ike, 'near');
		expect(a).toMatch(/v4 \{\n\t\tversion = 2\n\t\tlocal_addrs = 192\.0\.2\.1\n\t\tremote_addrs = 192\.0\.2\.2\n/);
		expect(a).toContain('local_ts = 2001:db8:1::1/128');
		expect(a).toContain('remote_ts = 2001:db8:1::2/128');
		expect(a.match(/start_action = trap/g)).toHaveLength(2);
		expect(a.match(/mode = transport/g)).toHaveLength(2);
		expect(a.match(/auth = psk/g)).toHaveLength(4);
		// Both sides share the secrets, named by the same ids.
		expect(swanctlConf(transportTopology().ike, 'far')).toContain('id-1 = 192.0.2.1\n\t\tid-2 = 192.0.2.2');
	});

	it('protects the hosts\' subnets between the gateways of the tunnel topology', () => {
		const [ga, gb] = charonInstances(tunnelTopology(), '/x');
		expect([ga!.ns, gb!.ns]).toEqual(['GA', 'GB']);
		expect(ga!.swanctlConf).toContain('local_addrs = 192.0.2.1');
		expect(ga!.swanctlConf).toContain('local_ts = 198.51.100.0/24\n\t\t\t\tremote_ts = 203.0.113.0/24');
		expect(gb!.swanctlConf).toContain('local_ts = 2001:db8:b::/64\n\t\t\t\tremote_ts = 2001:db8:a::/64');
		expect(gb!.swanctlConf.match(/mode = tunnel/g)).toHaveLength(2);
	});

	it('lists the plugin files charon and swanctl load', () => {
		expect(pluginPaths()).toContain('/usr/lib/ipsec/plugins/libstrongswan-kernel-netlink.so');
		expect(new Set(pluginPaths()).size).toBe(pluginPaths().length);
	});

	it('binds each instance its own /run and waits for its vici socket, bounded', () => {
		const cs = charonInstances(transportTopology(), '/x');
		const start = startCharons(cs).join('\n');
		expect(start).toContain("ip netns exec A setsid /bin/sh -c 'mount -o bind /x/charon-A/run /run && STRONGSWAN_CONF=/x/charon-A/strongswan.conf exec /usr/lib/ipsec/charon'");
		expect(start).toContain('--uri unix:///x/charon-B/run/charon.vici');
		expect(start).toMatch(/\[ \$i -gt 500 \] && \{ echo "=== not-ready"; echo "charon in A: no vici socket after 10 s/);
		expect(stopCharons(cs).join('\n')).toContain('/x/charon-B/run/charon.pid');
		expect(strongswanConf('/y')).toContain('time_add_ms = yes');
	});
});

describe("charon's log", () => {
	it('reads the negotiation a trap started from a real guest log', () => {
		const n = negotiationOf(parseCharonLog(fixture('charon-patched-transport-A.txt')));
		// 1795933208.711 acquire job ... 1795933209.129 CHILD_SA v4{3} established
		expect(n).toEqual({ ms: 418, acquires: 1, established: ['v4{3}'], failures: [] });
	});

	// A host run (not a guest) whose kernel refused B's SA: B answered IKE_AUTH with NO_PROPOSAL_CHOSEN.
	it('says when no CHILD_SA came, and why', () => {
		const n = negotiationOf(parseCharonLog(fixture('charon-child-sa-failed-A.txt')));
		expect(n.ms).toBeNull();
		expect(n.established).toEqual([]);
		expect(n.failures).toEqual(['received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built', 'failed to establish CHILD_SA, keeping IKE_SA']);
	});

	it('ignores lines that are not log lines, and keeps the tail', () => {
		expect(parseCharonLog('garbage\n1.002 05[IKE] x y\n')).toEqual([{ tMs: 1002, group: 'IKE', text: 'x y' }]);
		expect(negotiationOf([])).toEqual({ ms: null, acquires: 0, established: [], failures: [] });
		expect(tailLines('a\nb\nc\n', 2)).toBe('b\nc');
	});
});
