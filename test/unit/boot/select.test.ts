import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSelector, selectTarget } from '../../../src/boot/select.ts';
import type { Disk } from '../../../src/target/sysfs.ts';
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const disk = (name: string, o: Partial<Disk> = {}): Disk => ({
	path: `/dev/${name}`,
	node: `/dev/${name}`,
	name,
	dev: `fake:${name}`,
	size: 64 * 2 ** 30,
	sectorSize: 512,
	readOnly: false,
	removable: false,
	model: 'QEMU HARDDISK',
	serial: '',
	wwn: '',
	backingFile: '',
	isPartition: false,
	partitions: [],
	...o,
});
const sda = disk('sda', { serial: 'KIOSK42', wwn: 'naa.5000c500a1b2c3d4' });
const sdb = disk('sdb', { serial: 'OTHER', size: 8 * 2 ** 30, removable: true });
const sdc = disk('sdc', { serial: 'TWIN' });
const sdd = disk('sdd', { serial: 'TWIN' });

test('by serial or WWN, whatever the kernel name or order', async () => {
	assert.is((await selectTarget(['serial:KIOSK42'], undefined, [sdb, sda])).name, 'sda');
	assert.is((await selectTarget(['wwn:0x5000c500a1b2c3d4'], undefined, [sda, sdb])).name, 'sda');
});

test('no match or several matches are refused, naming every candidate and why', async () => {
	try {
		await selectTarget(['serial:NOPE'], undefined, [sda, sdb]);
		assert.unreachable();
	} catch (e) {
		assert.is((e as { code: number }).code, 4);
		assert.match((e as Error).message, /no disk matches .*\/dev\/sda .*does not match serial:NOPE; \/dev\/sdb/);
	}
	try {
		await selectTarget(['serial:TWIN'], undefined, [sdc, sdd]);
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /2 disks match .*\/dev\/sdc .* matches; \/dev\/sdd .* matches/);
	}
});

test('removable disks and the bundle disk are never chosen automatically', async () => {
	try {
		await selectTarget(['size:1G-'], 'sda', [sda, sdb]);
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /sda .*holds the bundle.*sdb .*is removable/);
	}
	assert.is((await selectTarget(['serial:KIOSK42'], 'sda', [sda, sdb])).name, 'sda', 'named explicitly, the bundle disk may be the target');
});

test('size ranges and all selectors together', async () => {
	assert.is((await selectTarget(['size:32G-128G'], undefined, [sda, sdb])).name, 'sda');
	assert.is((await selectTarget(['model:QEMU HARDDISK', 'serial:KIOSK42'], undefined, [sda, sdc])).name, 'sda');
});

test('kernel names are refused; unknown selectors explained', () => {
	assert.throws(() => parseSelector('/dev/sda'), /kernel device name/);
	assert.throws(() => parseSelector('vda'), /kernel device name/);
	assert.throws(() => parseSelector('colour:blue'), /not understood/);
	assert.equal(parseSelector('/dev/disk/by-id/ata-X'), { kind: 'by-id', value: '/dev/disk/by-id/ata-X', text: '/dev/disk/by-id/ata-X' });
});

// A fake /dev: nodes are plain files, /dev/disk/by-* links point at them as udev's do.
const dev = join(realpathSync(mkdtempSync(join(tmpdir(), 'reimage-select-'))), 'dev');
for (const d of ['by-id', 'by-path']) mkdirSync(join(dev, 'disk', d), { recursive: true });
const links: Record<string, string> = {
	'by-id/ata-QEMU_HARDDISK_KIOSK42': 'sda',
	'by-id/wwn-0x5000c500a1b2c3d4': 'sda',
	'by-path/pci-0000:00:1f.2-ata-1': 'sda',
	'by-path/pci-0000:00:1f.2-ata-2': 'sdb',
	'by-id/ata-CLONE_TWIN': 'sdc',
	'by-id/nvme-eui.01': 'nvme0n1',
};
for (const n of ['sda', 'sdb', 'sdc', 'sdd', 'nvme0n1', 'nvme0n2']) writeFileSync(join(dev, n), '');
for (const [l, n] of Object.entries(links)) symlinkSync(`../../${n}`, join(dev, 'disk', l));
const at = (d: Disk): Disk => ({ ...d, node: join(dev, d.name) });
const [fa, fb, fc, fd] = [sda, { ...sdb, removable: false, dev: '8:16' }, { ...sdc, dev: '8:32' }, { ...sdd, dev: '8:48' }].map(at) as [
	Disk,
	Disk,
	Disk,
	Disk,
];
const nvme1 = at(disk('nvme0n1', { dev: '259:0', serial: 'CTRL1', wwn: 'eui.01' }));
const nvme2 = at(disk('nvme0n2', { dev: '259:1', serial: 'CTRL1', wwn: 'eui.02' }));
const fails = async (p: Promise<unknown>, re: RegExp, code = 4) => {
	try {
		await p;
		assert.unreachable('chosen');
	} catch (e) {
		assert.is((e as { code: number }).code, code, (e as Error).message);
		assert.match((e as Error).message, re);
	}
};

test('links: by-id and by-path naming the same disk count once; naming two disks is refused listing both', async () => {
	const both = ['/dev/disk/by-id/ata-QEMU_HARDDISK_KIOSK42', 'by-path:pci-0000:00:1f.2-ata-1'];
	assert.is((await selectTarget(both, undefined, [fa, fb], dev)).name, 'sda');
	// The same disk listed under two names (one device number) is one candidate.
	assert.is(
		(await selectTarget(['by-id:wwn-0x5000c500a1b2c3d4'], undefined, [fa, { ...fa, path: '/dev/disk/by-id/x' }, fb], dev)).name,
		'sda',
	);
	await fails(
		selectTarget(['/dev/disk/by-id/ata-QEMU_HARDDISK_KIOSK42', '/dev/disk/by-path/pci-0000:00:1f.2-ata-2'], undefined, [fa, fb], dev),
		/no disk matches .*sda .*does not match \/dev\/disk\/by-path\/pci-0000:00:1f\.2-ata-2; .*sdb .*does not match \/dev\/disk\/by-id\/ata-QEMU_HARDDISK_KIOSK42/,
	);
	await fails(selectTarget(['by-id:nothing-here'], undefined, [fa, fb], dev), /no disk matches/);
});

test('a by-id link names an identity: two disks that share it (cloned serial, no distinct WWN) are refused, listing both', async () => {
	await fails(
		selectTarget(['/dev/disk/by-id/ata-CLONE_TWIN'], undefined, [fa, fc, fd], dev),
		/2 disks match .*\/sdc .*matches; .*\/sdd .*matches.*make the selector unique/,
	);
	// NVMe namespaces share the controller's serial but each has its own WWN (EUI): not twins.
	assert.is((await selectTarget(['by-id:nvme-eui.01'], undefined, [nvme1, nvme2], dev)).name, 'nvme0n1');
});

test('a link name that leaves its directory is refused (a kernel name in disguise)', async () => {
	assert.throws(() => parseSelector('/dev/disk/by-id/../../sda'), /is not a link name in \/dev\/disk\/by-id\//);
	assert.throws(() => parseSelector('by-path:../../sda'), /is not a link name/);
	assert.throws(() => parseSelector('by-id:..'), /is not a link name/);
});

test('partuuid: the disk that carries the partition (a factory reset names its recovery partition so); a bad GUID refused', async () => {
	mkdirSync(join(dev, 'disk', 'by-partuuid'), { recursive: true });
	writeFileSync(join(dev, 'sdc3'), '');
	symlinkSync('../../sdc3', join(dev, 'disk', 'by-partuuid', '0fc63daf-8483-4772-8e79-3d69d8477de4'));
	const withPart = { ...fc, partitions: [{ name: 'sdc3', number: 3, start: 0, size: 1, dev: '8:35' }] };
	assert.is((await selectTarget(['partuuid:0FC63DAF-8483-4772-8e79-3d69d8477de4'], 'sdc', [fa, withPart, fd], dev)).name, 'sdc');
	await fails(
		selectTarget(['partuuid:11111111-8483-4772-8e79-3d69d8477de4'], undefined, [fa, withPart], dev),
		/no disk matches the target selector partuuid:/,
	);
	await fails(
		Promise.resolve().then(() => parseSelector('partuuid:../../sda')),
		/is not a partition GUID/,
		2,
	);
});

test.run();
