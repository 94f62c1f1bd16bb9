import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lvPath, parentsFirst, parseFstab, parseSpec, subvolOptions } from '../../../src/util/fstab.ts';

test('specs by kind and by /dev/disk/by-* link', () => {
	assert.equal(parseSpec('LABEL=root'), { kind: 'LABEL', value: 'root' });
	assert.equal(parseSpec('PARTUUID="abc"'), { kind: 'PARTUUID', value: 'abc' });
	assert.equal(parseSpec('/dev/disk/by-partlabel/my\\x20data'), { kind: 'PARTLABEL', value: 'my data' });
	assert.is(parseSpec('/dev/sda1'), undefined);
});

test('fstab lines: pseudo file systems, swap and noauto are skipped', () => {
	const t = parseFstab(`# static
LABEL=root / ext4 defaults 0 1
UUID=1234-ABCD /boot/efi vfat umask=0077 0 1
LABEL=data /srv/my\\040data ext4 defaults 0 2
LABEL=swap none swap sw 0 0
proc /proc proc defaults 0 0
LABEL=usb /mnt/usb ext4 noauto 0 0
`);
	assert.equal(
		t.map((l) => [l.kind, l.value, l.path]),
		[
			['LABEL', 'root', '/'],
			['UUID', '1234-ABCD', '/boot/efi'],
			['LABEL', 'data', '/srv/my data'],
		],
	);
});

test('mount lines parents first, whatever order they were given in', () => {
	assert.equal(
		parentsFirst([{ path: '/kiosk/media' }, { path: '/boot/efi' }, { path: '/' }, { path: '/kiosk' }]).map((l) => l.path),
		['/', '/kiosk', '/boot/efi', '/kiosk/media'],
	);
});

test('fstab options are kept; subvolOptions keeps only what chooses a btrfs subvolume', () => {
	const [root, home] = parseFstab(
		'LABEL=fedora / btrfs subvol=@,compress=zstd:1 0 0\nLABEL=fedora /home btrfs defaults,subvolid=257,noatime 0 0\n',
	);
	assert.is(root?.options, 'subvol=@,compress=zstd:1');
	assert.is(subvolOptions(root?.options ?? ''), 'subvol=@');
	assert.is(subvolOptions(home?.options ?? ''), 'subvolid=257');
	assert.is(subvolOptions('defaults'), '');
	assert.is(subvolOptions('subvol=,ro'), '');
});

test('LVM: /dev/mapper/VG-LV (dashes doubled) and /dev/VG/LV lines name a logical volume; other /dev paths do not', () => {
	assert.is(lvPath('/dev/mapper/vgkiosk-root'), 'vgkiosk/root');
	assert.is(lvPath('/dev/mapper/debian--vg-root--fs'), 'debian-vg/root-fs');
	assert.is(lvPath('/dev/vgkiosk/data'), 'vgkiosk/data');
	for (const no of ['/dev/sda1', '/dev/disk/by-label/x', '/dev/md/0', '/dev/mapper/luks', '/dev/mapper/a-b-c'])
		assert.is(lvPath(no), undefined, no);
	assert.equal(
		parseFstab(
			'/dev/mapper/vgkiosk-root / ext4 defaults 0 1\n/dev/vgkiosk/data /data xfs defaults 0 2\n/dev/sda9 /x ext4 defaults 0 0\n',
		).map((l) => [l.kind, l.value, l.path]),
		[
			['LV', 'vgkiosk/root', '/'],
			['LV', 'vgkiosk/data', '/data'],
		],
	);
});

test.run();
