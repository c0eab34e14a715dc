import { describe } from 'vitest';
import { LIBRESWAN_CASES } from '../../harness/suite/ike-cases.js';
import { describeIkeCases, itAnswersEveryPingOnPatched, itLosesTheFirstPingOnStock } from './ike-suite.js';
import { repeatFor, tierOf } from './repeat.js';

/**
 * libreswan as the key manager: a pluto on each side (Debian's 4.10,
 * fetched by `make deps`, never installed on the host), IKEv2 with a PSK,
 * auto=ondemand trap policies, strongSwan's proposals.  The same cases as
 * strongSwan's (harness/suite/ike-cases.ts) against the negotiation time
 * pluto's log reports.  The ci tier runs the series' rows on patched once
 * each (CI's budget; the switch-off rows are strongSwan's there), the full
 * tier every row on all three kernels; the README's example on stock and
 * patched in both.
 */
// In ci, the series' rows only: the switch-off rows are strongSwan's there (the same cases, the kernel's side of them the same).
describeIkeCases('libreswan', LIBRESWAN_CASES, tierOf() === 'full' ? ['distro', 'stock', 'patched'] : ['patched'], repeatFor('libreswan'), (mode) => tierOf() === 'full' || mode === 'xfrm_resolve=1');

describe('larval exec --km libreswan', () => {
	itLosesTheFirstPingOnStock('libreswan', /"v4" #\d+: (initiator|responder) established Child SA/);
	itAnswersEveryPingOnPatched('libreswan');
});
