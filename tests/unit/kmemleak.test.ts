import { describe, expect, it } from 'vitest';
import { parseKmemleak } from '../../harness/vm/kmemleak.js';

// The format of mm/kmemleak.c's print_unreferenced() in 6.12.
const REPORT = `unreferenced object 0xffff888004a1c2c0 (size 32):
  comm "larval-waiters", pid 412, jiffies 4294937021
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 8d2e1c4a):
    [<ffffffff8124a0b1>] kmalloc_trace_noprof+0x21/0x40
    [<ffffffff81c4e2f3>] xfrm_larval_add_waiter+0x43/0x1a0
    [<ffffffff81b01234>] datagram_poll+0x94/0x130
unreferenced object 0xffff888004a1c300 (size 64):
  comm "ip", pid 419, jiffies 4294937100
  backtrace (crc 0):
    [<ffffffff8124a0b1>] kmalloc_trace_noprof+0x21/0x40
`;

describe('kmemleak report', () => {
	it('reads each unreferenced object with its size, task and backtrace', () => {
		const leaks = parseKmemleak(REPORT);
		expect(leaks.map((l) => [l.object, l.size, l.comm, l.backtrace.length])).toEqual([
			['0xffff888004a1c2c0', 32, 'larval-waiters', 3],
			['0xffff888004a1c300', 64, 'ip', 1],
		]);
		expect(leaks[0]!.backtrace[1]).toBe('xfrm_larval_add_waiter+0x43/0x1a0');
	});

	it('reads an empty report as no leak', () => {
		expect(parseKmemleak('')).toEqual([]);
	});
});
