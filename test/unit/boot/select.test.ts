import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSelector, selectTarget } from '../../../src/boot/select.ts';
import type { Disk } from '../../../src/target/sysfs.ts';

const disk = (name: string, o: Partial<Disk> = {}): Disk => ({
  path: `/dev/${name}`, node: `/dev/${name}`, name, dev: '8:0', size: 64 * 2 ** 30, sectorSize: 512, readOnly: false, removable: false,
  model: 'QEMU HARDDISK', serial: '', wwn: '', backingFile: '', isPartition: false, partitions: [], ...o,
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

test.run();
