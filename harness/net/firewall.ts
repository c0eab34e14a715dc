import type { Topology } from './topology.js';

/**
 * Firewalls a topology can run under.  `stateful` is the common host and
 * gateway ruleset, "ct state established,related accept; drop", in every
 * namespace: what a released packet must survive (issue #15: held packets
 * must look, to conntrack, like the packets stock would have sent the
 * moment the SA existed, so that their replies are ESTABLISHED).
 */
export type Firewall = 'stateful';
export const FIREWALLS: readonly Firewall[] = ['stateful'];

/** The nftables table every rule lives in: deleting it restores an open namespace. */
export const FIREWALL_TABLE = 'larval_fw';

/**
 * Neighbour discovery is what IPv6 needs to work at all, and conntrack
 * does not track it: every stateful ruleset admits it.
 */
const ND = 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept';

/**
 * The ruleset of each role.  A client admits only what answers its own
 * traffic; a server also admits new flows to it (its echo services; an
 * INVALID packet, such as a SYN-ACK conntrack never saw a SYN for, is still
 * dropped); a gateway forwards new flows from its protected side and from
 * IPsec, and admits ESP.
 */
function ruleset(role: 'client' | 'server' | 'gateway', insideDev?: string): string {
	const input = [
		'ct state established,related accept',
		'iif lo accept',
		ND,
		...(role === 'server' ? ['ct state new accept'] : []),
		...(role === 'gateway' ? ['meta l4proto esp accept'] : []),
	];
	const forward = role === 'gateway'
		? [
			'ct state established,related accept',
			ND,
			`iifname ${JSON.stringify(insideDev ?? '')} ct state new accept`,
			'meta secpath exists ct state new accept',
		]
		: [];
	const chain = (name: string, rules: string[]) =>
		// The explicit drop counts what the policy would drop silently: a failed run's report shows it.
		[`\tchain ${name} {`, `\t\ttype filter hook ${name} priority filter; policy drop;`, ...[...rules, 'counter drop'].map((r) => `\t\t${r}`), '\t}'];
	return [`table inet ${FIREWALL_TABLE} {`, ...chain('input', input), ...(forward.length ? chain('forward', forward) : []), '}'].join('\n');
}

/** Shell lines that load @fw in every namespace of @t (a failure is the set-up's, `=== not-ready`). */
export function firewallLoad(t: Topology, fw: Firewall, dir: string): string[] {
	if (fw !== 'stateful') throw new Error(`unknown firewall ${String(fw)}`);
	return t.namespaces.flatMap((ns) => {
		const gw = t.gateways.find((g) => g.ns === ns);
		const role = gw ? 'gateway' : ns === t.server.ns ? 'server' : 'client';
		const file = `${dir}/fw-${ns}.nft`;
		return [
			`cat > ${file} <<'NFT'\n${ruleset(role, gw?.insideDev)}\nNFT`,
			`ip netns exec ${ns} nft -f ${file} 2>${file}.err || { echo "=== not-ready"; echo "nft -f ${file} failed in ${ns}:"; cat ${file}.err; exit 95; }`,
		];
	});
}

/** Shell lines that remove the firewall from every namespace of @t (nothing if none is loaded). */
export function firewallUnload(t: Topology): string[] {
	return t.namespaces.map((ns) => `ip netns exec ${ns} nft delete table inet ${FIREWALL_TABLE} 2>/dev/null`);
}

/** What drop counters say: each namespace's ruleset with its counters (for a failed run's report). */
export function firewallReport(t: Topology): string[] {
	return t.namespaces.map((ns) => `echo "--- ${ns}"; ip netns exec ${ns} nft list table inet ${FIREWALL_TABLE} 2>&1`);
}
