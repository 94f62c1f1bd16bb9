import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holders, mountsOf, queueLimit, type Disk } from '../../../src/target/sysfs.ts';

test('queue limits are read from sysfs; a missing or zero limit means no offload', async () => {
  const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
  const q = join(sys, 'class/block/vda/queue');
  mkdirSync(q, { recursive: true });
  writeFileSync(join(q, 'write_zeroes_max_bytes'), '33554432\n');
  writeFileSync(join(q, 'discard_max_bytes'), '0\n');
  assert.is(await queueLimit('vda', 'write_zeroes_max_bytes', sys), 33554432);
  assert.is(await queueLimit('vda', 'discard_max_bytes', sys), 0);
  assert.is(await queueLimit('sdz', 'discard_max_bytes', sys), 0);
  rmSync(sys, { recursive: true, force: true });
});

const disk: Disk = {
  path: '/dev/loop9', node: '/dev/loop9', name: 'loop9', dev: '7:9', size: 1 << 30, sectorSize: 512, readOnly: false, removable: false,
  model: '', serial: '', wwn: '', backingFile: '/x.img', isPartition: false,
  partitions: [
    { name: 'loop9p1', number: 1, start: 2048, size: 4096, dev: '259:1' },
    { name: 'loop9p2', number: 2, start: 6144, size: 4096, dev: '259:2' },
  ],
};

test('holders: a device-mapper or MD device stacked on the disk or on any of its partitions is named', async () => {
  const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
  const base = join(sys, 'devices/virtual/block/loop9');
  for (const d of ['holders', 'loop9p1/holders', 'loop9p2/holders']) mkdirSync(join(base, d), { recursive: true });
  mkdirSync(join(sys, 'dev/block'), { recursive: true });
  symlinkSync(base, join(sys, 'dev/block/7:9'));
  assert.equal(await holders(disk, sys), []);
  mkdirSync(join(base, 'loop9p2/holders/dm-0'));
  mkdirSync(join(base, 'holders/md127'));
  assert.equal((await holders(disk, sys)).sort(), ['loop9 is held by md127 (mdadm --stop /dev/md127)', 'loop9p2 is held by dm-0 (dmsetup remove /dev/dm-0)']);
  // The release command names the device-mapper device by its name when sysfs has it.
  mkdirSync(join(sys, 'block/dm-0/dm'), { recursive: true });
  writeFileSync(join(sys, 'block/dm-0/dm/name'), 'vg-root\n');
  assert.ok((await holders(disk, sys)).includes('loop9p2 is held by dm-0 (dmsetup remove vg-root)'));
  rmSync(sys, { recursive: true, force: true });
});

test('mountsOf: a mount of the disk or a partition, and swap on it, are named; other devices are not', async () => {
  const proc = mkdtempSync(join(tmpdir(), 'reimage-proc-'));
  mkdirSync(join(proc, 'self'));
  writeFileSync(
    join(proc, 'self/mountinfo'),
    ['22 1 8:1 / / rw - ext4 /dev/sda1 rw', '40 22 259:1 / /mnt/old\\040root ro - ext4 /dev/loop9p1 ro', '41 22 7:8 / /other rw - ext4 /dev/loop8 rw'].join('\n') + '\n',
  );
  writeFileSync(join(proc, 'swaps'), 'Filename\tType\tSize\tUsed\tPriority\n');
  assert.equal(await mountsOf(disk, proc), ["loop9p1 is mounted on /mnt/old root (umount '/mnt/old root')"]);
  rmSync(proc, { recursive: true, force: true });
});

test.run();
