import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { envRefusal } from '../../../src/arm/grub.ts';
import { kernelArgs } from '../../../src/arm/entry.ts';

test('GRUB cannot keep a one-shot on btrfs, ZFS, LVM/dm or RAID', () => {
	assert.match(envRefusal('btrfs', '/dev/sda2')!, /btrfs/);
	assert.match(envRefusal('zfs', 'rpool/boot')!, /zfs/);
	assert.match(envRefusal('ext4', '/dev/mapper/vg-boot')!, /device-mapper/);
	assert.match(envRefusal('ext4', '/dev/md0')!, /RAID/);
	assert.is(envRefusal('ext4', '/dev/sda1'), undefined);
	assert.is(envRefusal('vfat', '/dev/nvme0n1p1'), undefined);
});

test('entry kernel arguments arm, select, set the mode and keep the console', () => {
	const s = { bundle: 'LABEL=My Stick:/b', target: 'serial:K', kver: '6.1', lockdown: ['rd.shell=0'], extra: ['console=ttyS0,115200'] };
	assert.is(
		kernelArgs(s, 'interactive'),
		'rd.reimage rd.reimage.bundle="LABEL=My Stick:/b" rd.reimage.target=serial:K rd.reimage.mode=interactive rd.shell=0 console=ttyS0,115200',
	);
});

test.run();
