// qemuArgs: the drive options a VM boot gets (a 4Kn disk's block sizes).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { qemuArgs } from '../../../src/vmtest/qemu.ts';

const devices = (a: string[]) => a.flatMap((x, i) => (a[i - 1] === '-device' ? [x] : []));

test('a 4Kn drive gets 4096-byte logical and physical blocks; a 512-byte one and a USB stick get none', () => {
	const a = qemuArgs({
		serialLog: '/tmp/s.log',
		drives: [
			{ file: '/tmp/d.img', serial: 'T', sectorSize: 4096 },
			{ file: '/tmp/e.img', serial: 'E', sectorSize: 512 },
			{ file: '/tmp/s.img', serial: 'S', usb: true },
		],
	});
	assert.equal(devices(a), [
		'qemu-xhci,id=xhci',
		'virtio-blk-pci,drive=d0,serial=T,logical_block_size=4096,physical_block_size=4096,bootindex=0',
		'virtio-blk-pci,drive=d1,serial=E',
		'usb-storage,bus=xhci.0,drive=d2,serial=S,removable=on',
	]);
});

test('a console a test types at is a pipe chardev (FIFOs PATH.in/.out) that also logs; without one the console is a plain file', () => {
	const serial = (a: string[]) => a.flatMap((x, i) => (['-chardev', '-serial'].includes(a[i - 1] ?? '') ? [x] : []));
	assert.equal(serial(qemuArgs({ serialLog: '/tmp/s.log', serialPipe: '/tmp/console', drives: [] })), [
		'pipe,id=ser0,path=/tmp/console,logfile=/tmp/s.log',
		'chardev:ser0',
	]);
	assert.equal(serial(qemuArgs({ serialLog: '/tmp/s.log', drives: [] })), ['file:/tmp/s.log']);
});

test.run();
