import { describe } from 'vitest';
import { STRONGSWAN_CASES } from '../../harness/suite/ike-cases.js';
import { describeIkeCases, itAnswersEveryPingOnPatched, itLosesTheFirstPingOnStock } from './ike-suite.js';
import { repeatFor, tierOf } from './repeat.js';

/**
 * strongSwan as the key manager (issue 6): a charon on each side, IKEv2 with
 * a PSK, trap policies.  Debian's kernel and stock lose (or retransmit) what
 * meets the missing SA; the patched kernel with xfrm_resolve=1 holds it and
 * answers within the negotiation time charon reports, and with
 * xfrm_resolve=0 behaves as stock.  A charon that does not start or does not
 * negotiate fails the case with its log's tail.  The ci tier runs the cases
 * on patched (with the switch off they assert stock's behaviour) and the
 * README's example on stock and patched; the full tier all three kernels.
 */
describeIkeCases('strongswan', STRONGSWAN_CASES, tierOf() === 'full' ? ['distro', 'stock', 'patched'] : ['patched'], repeatFor('strongswan'));

// The README's example: a host ping from A to the peer by name, the first
// request meeting the trap policy.  Stock drops it; the series holds it, or
// (0009) holds ping's connect() until the SA exists.
describe('larval exec --km strongswan', () => {
	itLosesTheFirstPingOnStock('strongswan', /CHILD_SA v4\{\d+\} established/);
	itAnswersEveryPingOnPatched('strongswan');
});
