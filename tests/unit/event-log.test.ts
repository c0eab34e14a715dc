import { describe, expect, it } from 'vitest';
import { outboundInstallNs, parseEventLog } from '../../harness/probe/event-log.js';

// Lines as larval-km and larval-echo print them.
const KM_LOG = [
	'19716358605 CONFIG keys=4 delay_ms=50 never=0 delete_after_ms=-1 exit_after_first=0 max_runtime_s=120',
	'READY 19716358605',
	'20882209896 ACQUIRE seq=1 src=192.0.2.1 dst=192.0.2.2 proto=esp mode=transport reqid=4 sel_src=192.0.2.1/32 sel_dst=192.0.2.2/32 sel_proto=6 sel_sport=0 sel_dport=7000',
	'20958039700 INSTALL dir=in spi=0x00002004 src=192.0.2.2 dst=192.0.2.1 proto=esp mode=transport reqid=4 seq=0 acq_seq=1 since_acquire_ms=75.830 sent_ns=20950000000 err=0',
	'20977804542 INSTALL dir=out spi=0x00001004 src=192.0.2.1 dst=192.0.2.2 proto=esp mode=transport reqid=4 seq=1 acq_seq=1 since_acquire_ms=95.595 sent_ns=20960000000 err=0',
	'',
].join('\n');

describe('guest event logs', () => {
	it('parses stamped events and the READY line', () => {
		const ev = parseEventLog(KM_LOG);
		expect(ev.map((e) => e.kind)).toEqual(['CONFIG', 'READY', 'ACQUIRE', 'INSTALL', 'INSTALL']);
		expect(ev[1]!.tNs).toBe(19716358605n);
		expect(ev[2]!.fields.sel_dport).toBe('7000');
	});

	it('dates the installation by when the outbound NEWSA left, not by its ack', () => {
		expect(outboundInstallNs(parseEventLog(KM_LOG))).toBe(20960000000n);
	});

	it('falls back to the ack stamp for logs without sent_ns, and ignores failed installs', () => {
		const old = parseEventLog('5 INSTALL dir=out spi=0x1 err=EEXIST\n7 INSTALL dir=out spi=0x1 err=0\n');
		expect(outboundInstallNs(old)).toBe(7n);
		expect(outboundInstallNs(parseEventLog('5 INSTALL dir=in err=0\n'))).toBeNull();
	});
});
