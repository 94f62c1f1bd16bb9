import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostSys, type Sys } from '../../../src/system/sys.ts';
import { holders, inSectors, loopBackers, major, minor, mountsOf, queueLimit, type Disk } from '../../../src/target/sysfs.ts';

// The host's Sys with its roots moved to a test tree.
const at = (sysRoot: string, procRoot = '/proc'): Sys => ({ ...hostSys, sysRoot, procRoot });

test('queue limits are read from sysfs; a missing or zero limit means no offload', async () => {
	const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
	const q = join(sys, 'class/block/vda/queue');
	mkdirSync(q, { recursive: true });
	writeFileSync(join(q, 'write_zeroes_max_bytes'), '33554432\n');
	writeFileSync(join(q, 'discard_max_bytes'), '0\n');
	assert.is(await queueLimit('vda', 'write_zeroes_max_bytes', at(sys)), 33554432);
	assert.is(await queueLimit('vda', 'discard_max_bytes', at(sys)), 0);
	assert.is(await queueLimit('sdz', 'discard_max_bytes', at(sys)), 0);
	rmSync(sys, { recursive: true, force: true });
});

test("inSectors: sysfs counts 512-byte units on every disk; a 4Kn disk's table counts 4096-byte sectors", () => {
	assert.is(inSectors(2048, 512), 2048);
	assert.is(inSectors(2048, 4096), 256);
	assert.is(inSectors(81920, 4096), 10240);
	// An extended partition's 1 KiB stub is a quarter sector on 4Kn: never equal to a table size.
	assert.is(inSectors(2, 4096), 0.25);
});

const disk: Disk = {
	path: '/dev/loop9',
	node: '/dev/loop9',
	name: 'loop9',
	dev: '7:9',
	size: 1 << 30,
	sectorSize: 512,
	readOnly: false,
	removable: false,
	model: '',
	serial: '',
	wwn: '',
	backingFile: '/x.img',
	isPartition: false,
	partitions: [
		{ name: 'loop9p1', number: 1, start: 2048, size: 4096, dev: '259:1' },
		{ name: 'loop9p2', number: 2, start: 6144, size: 4096, dev: '259:2' },
	],
};

test('holders: a device-mapper or MD device stacked on the disk or on any of its partitions is named', async () => {
	const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
	const base = join(sys, 'devices/virtual/block/loop9');
	for (const d of ['holders', 'loop9p1/holders', 'loop9p2/holders']) mkdirSync(join(base, d), { recursive: true });
	for (const [n, p] of disk.partitions.entries()) writeFileSync(join(base, p.name, 'partition'), `${n + 1}\n`);
	mkdirSync(join(sys, 'dev/block'), { recursive: true });
	symlinkSync(base, join(sys, 'dev/block/7:9'));
	assert.equal(await holders(disk, at(sys)), []);
	mkdirSync(join(base, 'loop9p2/holders/dm-0'));
	mkdirSync(join(base, 'holders/md127'));
	assert.equal((await holders(disk, at(sys))).sort(), [
		'loop9 is held by md127 (mdadm --stop /dev/md127)',
		'loop9p2 is held by dm-0 (dmsetup remove /dev/dm-0)',
	]);
	// The release command names the device-mapper device by its name when sysfs has it.
	mkdirSync(join(sys, 'block/dm-0/dm'), { recursive: true });
	writeFileSync(join(sys, 'block/dm-0/dm/name'), 'vg-root\n');
	assert.ok((await holders(disk, at(sys))).includes('loop9p2 is held by dm-0 (dmsetup remove vg-root)'));
	// An LVM logical volume (dm uuid LVM-…) is taken down with lvm.
	writeFileSync(join(sys, 'block/dm-0/dm/uuid'), 'LVM-H4LyKPb44rNAp1ZsLX2TrtvgdfCef9WRopYWtE98gcsrILaHFpPI3aMf20ys9CsP\n');
	assert.ok((await holders(disk, at(sys))).includes('loop9p2 is held by dm-0 (lvchange -an /dev/mapper/vg-root)'));
	rmSync(sys, { recursive: true, force: true });
});

test('mountsOf: a mount of the disk or a partition, and swap on it, are named; other devices are not', async () => {
	const proc = mkdtempSync(join(tmpdir(), 'reimage-proc-'));
	mkdirSync(join(proc, 'self'));
	writeFileSync(
		join(proc, 'self/mountinfo'),
		[
			'22 1 8:1 / / rw - ext4 /dev/sda1 rw',
			'40 22 259:1 / /mnt/old\\040root ro - ext4 /dev/loop9p1 ro',
			'41 22 7:8 / /other rw - ext4 /dev/loop8 rw',
		].join('\n') + '\n',
	);
	writeFileSync(join(proc, 'swaps'), 'Filename\tType\tSize\tUsed\tPriority\n');
	// (A sysfs without the disk: its partitions as last read.)
	const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
	assert.equal(await mountsOf(disk, at(sys, proc)), ["loop9p1 is mounted on /mnt/old root (umount '/mnt/old root')"]);
	rmSync(proc, { recursive: true, force: true });
	rmSync(sys, { recursive: true, force: true });
});

test("mountsOf: the disk's partitions as the kernel numbers them now, never an earlier look's numbers (a reread renumbers them, and another disk's partitions may take the old ones)", async () => {
	// sysfs says loop9p1 is now 259:7 (reread since `disk` was read, when it was 259:1).
	const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
	const base = join(sys, 'devices/virtual/block/loop9');
	mkdirSync(join(base, 'loop9p1'), { recursive: true });
	mkdirSync(join(base, 'queue'), { recursive: true });
	writeFileSync(join(base, 'queue/logical_block_size'), '512\n');
	for (const [k, v] of [
		['partition', '1'],
		['start', '2048'],
		['size', '4096'],
		['dev', '259:7'],
	])
		writeFileSync(join(base, 'loop9p1', k as string), `${v}\n`);
	mkdirSync(join(sys, 'dev/block'), { recursive: true });
	symlinkSync(base, join(sys, 'dev/block/7:9'));
	const proc = mkdtempSync(join(tmpdir(), 'reimage-proc-'));
	mkdirSync(join(proc, 'self'));
	writeFileSync(join(proc, 'swaps'), 'Filename\tType\tSize\tUsed\tPriority\n');
	const mounted = (dev: string) =>
		writeFileSync(join(proc, 'self/mountinfo'), `40 22 ${dev} / /run/reimage/run-x/new rw - ext4 /dev/x rw\n`);
	mounted('259:1');
	assert.equal(await mountsOf(disk, at(sys, proc)), [], "259:1 is another disk's partition now");
	mounted('259:7');
	assert.equal(await mountsOf(disk, at(sys, proc)), ["loop9p1 is mounted on /run/reimage/run-x/new (umount '/run/reimage/run-x/new')"]);
	rmSync(sys, { recursive: true, force: true });
	rmSync(proc, { recursive: true, force: true });
});

test("loopBackers: a loop device whose backing file is one of the disk's partitions is named with losetup -d; others are not", async () => {
	// Any real block device node stands in for the partition (only its device number is compared).
	const node = readdirSync('/dev')
		.map((n) => `/dev/${n}`)
		.find((p) => {
			try {
				return statSync(p).isBlockDevice();
			} catch {
				return false;
			}
		});
	if (!node) return;
	const rdev = statSync(node).rdev;
	const d: Disk = { ...disk, partitions: [{ name: 'loop9p2', number: 2, start: 6144, size: 4096, dev: `${major(rdev)}:${minor(rdev)}` }] };
	const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
	for (const [loop, file] of [
		['loop5', node],
		['loop6', '/srv/disk.img'],
		['loop9', node],
	] as const) {
		mkdirSync(join(sys, `block/${loop}/loop`), { recursive: true });
		writeFileSync(join(sys, `block/${loop}/loop/backing_file`), `${file}\n`);
	}
	mkdirSync(join(sys, 'block/sda'), { recursive: true });
	assert.equal(await loopBackers(d, at(sys)), ['loop9p2 backs the loop device loop5 (losetup -d /dev/loop5)']);
	rmSync(sys, { recursive: true, force: true });
});

test.run();
