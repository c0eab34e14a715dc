import { describe, expect, it } from 'vitest';
import { parseKeyManager, parseResolve, parseTopologyName, peerHostsLines } from '../../harness/suite/scenario.js';

describe('guest options of larval exec and shell', () => {
	it('names the peers PEER and PEER6 (any case) in /etc/hosts format', () => {
		expect(peerHostsLines('192.0.2.2', '2001:db8:1::2')).toBe('192.0.2.2\tPEER peer\n2001:db8:1::2\tPEER6 peer6\n');
	});

	it('accepts the topologies and key managers there are, and says which for others', () => {
		expect(parseTopologyName('tunnel')).toBe('tunnel');
		expect(() => parseTopologyName('mesh')).toThrow(/transport or tunnel/);
		expect(parseKeyManager('none')).toBe('none');
		expect(parseKeyManager('libreswan')).toBe('libreswan');
		expect(() => parseKeyManager('racoon')).toThrow(/^--km must be test, strongswan, libreswan or none, not racoon$/);
	});

	it('takes --resolve 0 or 1 only', () => {
		expect(parseResolve('0')).toBe(0);
		expect(parseResolve('1')).toBe(1);
		expect(() => parseResolve('yes')).toThrow(/0 or 1/);
	});
});
