/**
 * Typed builders for `ip xfrm` commands, so that tests describe SAs and
 * policies as data and never splice command strings by hand.  Each builder
 * returns the argument vector after `ip` (join with shellJoin to run it).
 */
export type Family = 4 | 6;
export type XfrmMode = 'transport' | 'tunnel';
export type PolicyDir = 'out' | 'in' | 'fwd';

/** rfc4106(gcm(aes)): 16-byte AES key + 4-byte salt, 128-bit ICV. */
export interface AeadKey {
	hex: string;
}

export interface StateSpec {
	src: string;
	dst: string;
	spi: number;
	mode: XfrmMode;
	reqid: number;
	key: AeadKey;
}

export interface TemplateSpec {
	/** Tunnel endpoints; omitted in transport mode. */
	src?: string;
	dst?: string;
	mode: XfrmMode;
	reqid?: number;
	/** `required` holds or drops traffic without an SA; `use` lets it pass in clear. */
	level?: 'required' | 'use';
}

export interface PolicySpec {
	dir: PolicyDir;
	src: string;
	dst: string;
	/** Upper-layer protocol selector, e.g. tcp; all when omitted. */
	proto?: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp' | number;
	tmpl: TemplateSpec;
	priority?: number;
	/** The xfrm interface the policy belongs to (`ip link add ... type xfrm if_id N`). */
	ifId?: number;
}

const HEX_KEY = /^0x[0-9a-f]{40}$/;
const IPV4 = /^(\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?$/;
const IPV6 = /^[0-9a-f:]+(\/\d{1,3})?$/i;

export function familyOf(addr: string): Family {
	if (IPV4.test(addr)) return 4;
	if (addr.includes(':') && IPV6.test(addr)) return 6;
	throw new Error(`not an IPv4 or IPv6 address: ${addr}`);
}

function sameFamily(...addrs: string[]): Family {
	const fams = new Set(addrs.map(familyOf));
	if (fams.size !== 1) throw new Error(`mixed address families: ${addrs.join(' ')}`);
	return [...fams][0]!;
}

export function aeadKey(hex: string): AeadKey {
	if (!HEX_KEY.test(hex)) throw new Error(`an rfc4106(gcm(aes)) key is 0x and 40 hex digits, not ${hex}`);
	return { hex };
}

function spiHex(spi: number): string {
	if (!Number.isInteger(spi) || spi < 0x100 || spi > 0xffffffff) throw new Error(`SPI out of range: ${spi}`);
	return `0x${spi.toString(16).padStart(8, '0')}`;
}

export function stateAdd(s: StateSpec): string[] {
	sameFamily(s.src, s.dst);
	return [
		'xfrm', 'state', 'add',
		'src', s.src, 'dst', s.dst,
		'proto', 'esp', 'spi', spiHex(s.spi),
		'reqid', String(s.reqid),
		'mode', s.mode,
		'aead', 'rfc4106(gcm(aes))', s.key.hex, '128',
	];
}

export function policyAdd(p: PolicySpec): string[] {
	sameFamily(p.src, p.dst);
	const t = p.tmpl;
	if (t.mode === 'tunnel' && (!t.src || !t.dst)) throw new Error('a tunnel-mode template needs src and dst');
	if (t.mode === 'transport' && (t.src || t.dst)) throw new Error('a transport-mode template takes no endpoints');
	const args = ['xfrm', 'policy', 'add', 'src', p.src, 'dst', p.dst];
	if (p.proto !== undefined) args.push('proto', String(p.proto));
	args.push('dir', p.dir);
	if (p.priority !== undefined) args.push('priority', String(p.priority));
	if (p.ifId !== undefined) args.push('if_id', String(p.ifId));
	args.push('tmpl');
	if (t.src && t.dst) {
		sameFamily(t.src, t.dst);
		args.push('src', t.src, 'dst', t.dst);
	}
	args.push('proto', 'esp');
	if (t.reqid !== undefined) args.push('reqid', String(t.reqid));
	args.push('mode', t.mode, 'level', t.level ?? 'required');
	return args;
}

/** One line of the key manager's keying table (vm-images/km/larval-km.c). */
export function keyingLine(s: StateSpec): string {
	sameFamily(s.src, s.dst);
	return `${s.src} ${s.dst} esp ${spiHex(s.spi)} ${s.mode} ${s.reqid} ${s.key.hex}`;
}
