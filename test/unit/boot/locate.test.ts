import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findDevice, parseLocation, type Scan } from '../../../src/boot/locate.ts';
import { createLog } from '../../../src/util/log.ts';

test('bundle locations: spec and path, or a by-* device path', () => {
	assert.equal(parseLocation('LABEL=REIMAGE:/bundle'), { device: { kind: 'LABEL', value: 'REIMAGE' }, path: '/bundle' });
	assert.equal(parseLocation('PARTUUID=1234-ab:/b/manifest.json'), {
		device: { kind: 'PARTUUID', value: '1234-ab' },
		path: '/b/manifest.json',
	});
	assert.equal(parseLocation('UUID=abcd'), { device: { kind: 'UUID', value: 'abcd' }, path: '/' });
	assert.equal(parseLocation('/dev/disk/by-id/usb-SanDisk_1234-0:0-part1:/bundle'), {
		device: { path: '/dev/disk/by-id/usb-SanDisk_1234-0:0-part1' },
		path: '/bundle',
	});
	assert.throws(() => parseLocation('stick'), /not understood/);
});

test('a by-label/by-uuid/by-partlabel/by-partuuid link is looked up like its spec (udev points it at one of several devices)', () => {
	assert.equal(parseLocation('/dev/disk/by-label/STICK:/bundle'), { device: { kind: 'LABEL', value: 'STICK' }, path: '/bundle' });
	assert.equal(parseLocation('/dev/disk/by-label/MY\\x20STICK'), { device: { kind: 'LABEL', value: 'MY STICK' }, path: '/' });
	assert.equal(parseLocation('/dev/disk/by-partuuid/1234-ab:/b').device, { kind: 'PARTUUID', value: '1234-ab' });
	assert.equal(parseLocation('/dev/disk/by-uuid/abcd').device, { kind: 'UUID', value: 'abcd' });
	assert.equal(parseLocation('/dev/disk/by-partlabel/bundle').device, { kind: 'PARTLABEL', value: 'bundle' });
});

// A fake machine: kernel names and what blkid says about each.
const fake = (devices: Record<string, Record<string, string>>, names = Object.keys(devices)): Scan => ({
	names: async () => names,
	probe: async (node) => devices[node.slice('/dev/'.length)] ?? {},
});
const log = createLog(process.stderr, Date.now, true);

test('two devices that carry the bundle location are refused, listing both; one device reached twice counts once', async () => {
	const twoSticks = fake({ sda1: { LABEL: 'root' }, sdb1: { LABEL: 'REIMAGE' }, sdc1: { LABEL: 'REIMAGE' } });
	for (const loc of ['LABEL=REIMAGE:/bundle', '/dev/disk/by-label/REIMAGE:/bundle']) {
		try {
			await findDevice(parseLocation(loc), log, 0, twoSticks);
			assert.unreachable();
		} catch (e) {
			assert.is((e as { code: number }).code, 3);
			assert.match(
				(e as Error).message,
				/the bundle location LABEL=REIMAGE is carried by 2 devices \(\/dev\/sdb1, \/dev\/sdc1\): only one may carry it; name one by UUID=/,
			);
		}
	}
	const partlabels = fake({ vda3: { PART_ENTRY_NAME: 'bundle' }, vdb1: { PART_ENTRY_NAME: 'bundle' } });
	await findDevice(parseLocation('PARTLABEL=bundle'), log, 0, partlabels).then(
		() => assert.unreachable(),
		(e: Error) => assert.match(e.message, /carried by 2 devices \(\/dev\/vda3, \/dev\/vdb1\)/),
	);
	// UUIDs compare case-insensitively, so the upper-case twin is a twin.
	const uuids = fake({ sdb1: { UUID: 'abcd-ef' }, sdc1: { UUID: 'ABCD-EF' } });
	await findDevice(parseLocation('UUID=abcd-ef'), log, 0, uuids).then(
		() => assert.unreachable(),
		(e: Error) => assert.match(e.message, /carried by 2 devices/),
	);
	const once = fake({ sda1: { LABEL: 'root' }, sdb1: { LABEL: 'REIMAGE' } }, ['sda1', 'sdb1', 'sdb1']);
	assert.is(await findDevice(parseLocation('LABEL=REIMAGE:/bundle'), log, 0, once), '/dev/sdb1');
});

test.run();
