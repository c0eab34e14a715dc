import { describe, expect, it } from 'vitest';
import { aeadKey, familyOf, keyingLine, policyAdd, stateAdd } from '../../harness/net/xfrm.js';
import { keyingTable, transportTopology, tunnelTopology } from '../../harness/net/topology.js';

const key = aeadKey('0x0102030405060708090a0b0c0d0e0f1011121314');

describe('ip xfrm builders', () => {
	it('builds an AEAD state', () => {
		expect(stateAdd({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1004, mode: 'transport', reqid: 4, key }).join(' ')).toBe(
			"xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00001004 reqid 4 mode transport aead rfc4106(gcm(aes)) 0x0102030405060708090a0b0c0d0e0f1011121314 128",
		);
	});

	it('builds transport and tunnel policies with level required by default', () => {
		expect(policyAdd({ dir: 'out', src: '192.0.2.1/32', dst: '192.0.2.2/32', tmpl: { mode: 'transport', reqid: 4 } }).join(' ')).toBe(
			'xfrm policy add src 192.0.2.1/32 dst 192.0.2.2/32 dir out tmpl proto esp reqid 4 mode transport level required',
		);
		expect(
			policyAdd({ dir: 'fwd', src: '2001:db8:b::/64', dst: '2001:db8:a::/64', proto: 'udp', tmpl: { mode: 'tunnel', src: '2001:db8:1::2', dst: '2001:db8:1::1', level: 'use' } }).join(' '),
		).toBe('xfrm policy add src 2001:db8:b::/64 dst 2001:db8:a::/64 proto udp dir fwd tmpl src 2001:db8:1::2 dst 2001:db8:1::1 proto esp mode tunnel level use');
		expect(policyAdd({ dir: 'out', src: '0.0.0.0/0', dst: '10.92.0.2/32', ifId: 92, tmpl: { mode: 'tunnel', src: '10.92.0.1', dst: '10.92.0.2', reqid: 92 } }).join(' ')).toBe(
			'xfrm policy add src 0.0.0.0/0 dst 10.92.0.2/32 dir out if_id 92 tmpl src 10.92.0.1 dst 10.92.0.2 proto esp reqid 92 mode tunnel level required',
		);
	});

	it('rejects malformed input instead of letting ip fail in the guest', () => {
		expect(() => aeadKey('0x1234')).toThrow(/40 hex digits/);
		expect(() => stateAdd({ src: '192.0.2.1', dst: '2001:db8::1', spi: 0x1000, mode: 'transport', reqid: 1, key })).toThrow(/mixed address families/);
		expect(() => stateAdd({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x10, mode: 'transport', reqid: 1, key })).toThrow(/SPI/);
		expect(() => policyAdd({ dir: 'out', src: '192.0.2.0/24', dst: '198.51.100.0/24', tmpl: { mode: 'tunnel' } })).toThrow(/tunnel-mode template needs/);
		expect(() => policyAdd({ dir: 'out', src: '192.0.2.1', dst: '192.0.2.2', tmpl: { mode: 'transport', src: '192.0.2.1', dst: '192.0.2.2' } })).toThrow(/no endpoints/);
		expect(() => familyOf('example.org')).toThrow(/not an IPv4 or IPv6 address/);
	});

	it('writes keying-table lines the key manager reads', () => {
		expect(keyingLine({ src: '2001:db8:1::1', dst: '2001:db8:1::2', spi: 0x1006, mode: 'transport', reqid: 6, key })).toBe(
			'2001:db8:1::1 2001:db8:1::2 esp 0x00001006 transport 6 0x0102030405060708090a0b0c0d0e0f1011121314',
		);
	});
});

describe('topologies', () => {
	it('keys the far side fully and the near side with policies only', () => {
		const t = transportTopology();
		const nearStates = t.setup.filter((c) => c.startsWith(`ip -n ${t.kmNamespace} xfrm state`));
		const farStates = t.setup.filter((c) => c.startsWith('ip -n B xfrm state'));
		expect(nearStates).toEqual([]);
		expect(farStates).toHaveLength(4);
		expect(t.nearPolicies.every((c) => c.startsWith('ip -n A xfrm policy add'))).toBe(true);
		expect(t.nearStates).toHaveLength(4);
	});

	it('gives the key manager exactly the SAs the far side has, both directions, both families', () => {
		for (const t of [transportTopology(), tunnelTopology()]) {
			const far = t.setup.filter((c) => / xfrm state add /.test(c));
			for (const s of t.nearStates) expect(far.some((c) => c.includes(`src ${s.src} dst ${s.dst} `) && c.includes(`spi 0x${s.spi.toString(16).padStart(8, '0')}`))).toBe(true);
			expect(keyingTable(t).trim().split('\n').slice(1)).toHaveLength(t.nearStates.length);
		}
	});

	it('forwards through the gateways in the tunnel topology, with fwd policies for the return path', () => {
		const t = tunnelTopology();
		expect(t.client.ns).toBe('HA');
		expect(t.kmNamespace).toBe('GA');
		expect(t.setup).toContain("ip netns exec GA sysctl -qw net.ipv4.ip_forward=1");
		expect(t.nearPolicies.filter((c) => / dir fwd /.test(c))).toHaveLength(2);
	});

	it('uses documentation addresses only', () => {
		const docs = /^(192\.0\.2\.|198\.51\.100\.|203\.0\.113\.|2001:db8:)/;
		for (const t of [transportTopology(), tunnelTopology()]) {
			for (const h of [t.client, t.server]) {
				expect(h.v4).toMatch(docs);
				expect(h.v6).toMatch(docs);
			}
		}
	});
});
