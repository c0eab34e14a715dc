import { describe, expect, it } from 'vitest';
import { firewallLoad, firewallUnload } from '../../harness/net/firewall.js';
import { transportTopology, tunnelTopology } from '../../harness/net/topology.js';

/** The ruleset each namespace gets (harness/net/firewall.ts), as the guest's nft reads it. */
const rulesetOf = (lines: string[], ns: string): string => {
	const i = lines.findIndex((l) => l.startsWith(`cat > /run/larval/fw-${ns}.nft`));
	return lines[i]!.split('\n').slice(1, -1).join('\n');
};

describe('the stateful firewall', () => {
	it('admits to a client only what answers its own traffic', () => {
		const rules = rulesetOf(firewallLoad(transportTopology(), 'stateful', '/run/larval'), 'A');
		expect(rules).toMatch(/chain input \{\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state established,related accept\n/);
		expect(rules).not.toMatch(/ct state new/);
		expect(rules).not.toMatch(/chain forward/);
		expect(rules).toMatch(/counter drop\n\t\}\n\}$/);
	});

	it('lets a server take new flows, and gateways forward new flows from inside and from IPsec', () => {
		const t = tunnelTopology();
		const lines = firewallLoad(t, 'stateful', '/run/larval');
		expect(rulesetOf(lines, 'HB')).toMatch(/ct state new accept/);
		expect(rulesetOf(lines, 'HA')).not.toMatch(/ct state new/);
		const ga = rulesetOf(lines, 'GA');
		expect(ga).toMatch(/chain forward \{/);
		expect(ga).toMatch(/iifname "ga0" ct state new accept/);
		expect(ga).toMatch(/meta secpath exists ct state new accept/);
		expect(ga).toMatch(/meta l4proto esp accept/);
		expect(rulesetOf(lines, 'GB')).toMatch(/iifname "gb0" ct state new accept/);
		// one load and one unload per namespace, each load failing the set-up loudly
		expect(lines.filter((l) => l.includes('nft -f')).length).toBe(t.namespaces.length);
		expect(lines.every((l) => !l.includes('nft -f') || l.includes('=== not-ready'))).toBe(true);
		expect(firewallUnload(t)).toHaveLength(t.namespaces.length);
	});
});
