import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveKernel } from '../../harness/kernel/target.js';
import { staticKeySites } from '../../harness/kernel/static-keys.js';
import { bootsNoGuest } from './guard.js';

bootsNoGuest('reads the built kernels\' vmlinux: what the switch-off path executes is decided by the build, not by a guest');

/** vmlinux of a built kernel: its build tree holds arch/x86/boot/bzImage. */
const vmlinuxOf = (bzImage: string) => join(dirname(bzImage), '../../../vmlinux');

/**
 * Issue #15, "cost when off" (0019): every test the series adds to a hot
 * path is a jump-label site of xfrm_resolve_used, a 5-byte NOP until a
 * namespace or a socket turns SA resolution on.  The functions below are
 * where those tests are inlined; a site missing from one of them means
 * code of the series runs there with the switch off.
 */
describe('the series\' switch-off path in the built kernel', () => {
	it('branches on xfrm_resolve_used in the bundle lookup, poll(), connect() and the datagram send paths', async () => {
		const k = await resolveKernel('patched');
		const s = await staticKeySites(vmlinuxOf(k.bzImage), 'xfrm_resolve_used');
		for (const fn of ['datagram_poll', 'inet_dgram_connect', 'udp_sendmsg', 'udpv6_sendmsg', 'raw_sendmsg', 'ping_v4_sendmsg']) {
			expect(s.functions, `${fn}: ${s.functions.join(', ')}`).toContain(fn);
		}
		// xfrm_resolve_wanted() is static: inlined into whichever function of the bundle lookup calls it.
		expect(s.functions.some((f) => /^xfrm_(bundle_lookup|lookup_with_ifid|resolve_wanted)/.test(f)), s.functions.join(', ')).toBe(true);
		// A site in an out-of-line copy of the header's helpers is a call on the path: the first build of 0019 had
		// one (xfrm_resolve_in_use, from inet_dgram_connect) until the helpers were made __always_inline.
		expect(s.functions.filter((f) => /^xfrm_(resolve_in_use|larval_send_waits|sk_larval_pending|sk_larval_connect)$/.test(f))).toEqual([]);
	}, 10 * 60_000);

	it('finds no such key in stock: the check can fail', async () => {
		const k = await resolveKernel('stock');
		await expect(staticKeySites(vmlinuxOf(k.bzImage), 'xfrm_resolve_used')).rejects.toThrow(/no symbol xfrm_resolve_used/);
	}, 20 * 60_000);
});
