import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderPlan, type PlanReport } from '../../../src/cli/plan.ts';

const MiB = 1 << 20;
const report = (over: Partial<PlanReport> = {}): PlanReport => ({
	device: { node: '/dev/sda', model: 'KIOSK SSD 64G', serial: 'KIOSK42', size: 512 * MiB, sectorSize: 512 },
	bundle: { dir: '/media/usb/bundle', codec: 'zstd', raw: { size: 192 * MiB } },
	retention: { list: '/etc/reimage/retention.list', lines: 4 },
	entries: [
		{ path: '/etc/opt/site.conf', line: 4, outcome: 'missing-optional' },
		{ path: '/etc/ssh/agent.sock', line: 3, outcome: 'skipped', reason: 'a socket: special files are not retained' },
	],
	planned: [
		{ path: '/etc/machine-id', kind: 'file', line: 1 },
		{ path: `/var/lib/kiosk/${'a-very-long-directory-name/'.repeat(4)}state.json`, kind: 'file', line: 2 },
	],
	plan: {
		partitionsNow: [{ node: '/dev/sda1', number: 1, fstype: 'ext4', label: 'root' }],
		partitionsAfter: [
			{ number: 1, start: MiB, size: 120 * MiB, fstype: 'ext4', label: 'root' },
			{ number: 2, start: 121 * MiB, size: 70 * MiB, fstype: 'ext4', name: 'data' },
		],
		mountsOld: [{ path: '/', spec: 'LABEL=root' }],
		mountsNew: [
			{ path: '/', spec: 'LABEL=root', partition: 1, fstype: 'ext4' },
			{ path: '/kiosk', spec: 'PARTLABEL=data', partition: 2, fstype: 'ext4' },
		],
		write: {
			imageBytes: 192 * MiB,
			mappedBytes: 2 * MiB,
			proof:
				'the compressed sha256 before writing, then every block-map range checked against its sha256 as it is decoded, before it is written',
		},
		ram: { need: 420 * MiB, available: 3000 * MiB },
		unused: { bytes: 320 * MiB, grow: false },
	},
	...over,
});

test('the plan answers what will happen, every line within 80 columns', () => {
	const text = renderPlan(report());
	for (const l of text.split('\n')) assert.ok(l.length <= 80, `${l.length}: ${l}`);
	assert.match(text, /^plan: \/dev\/sda would be replaced by the 192 MiB image of\s+\/media\/usb\/bundle;\s+nothing was written\n/);
	assert.match(text, /\n {2}\/dev\/sda: KIOSK SSD 64G, serial KIOSK42, 512 MiB\s+\(536870912\s+bytes\),\s+512-byte\s+sectors\n/);
	assert.match(text, /partitions now \(all replaced\)\n {2}\/dev\/sda1 {2}ext4 {2}root\n/);
	assert.match(text, /partitions after\n {2}1 {2}at 1\.0 MiB, 120 MiB {2}ext4 {2}root\n {2}2 {2}at 121 MiB, 70 MiB {2}ext4 {2}data\n/);
	assert.match(text, /mounts of the old system.*\n {2}\/ +LABEL=root\n/);
	assert.match(text, /\/kiosk +PARTLABEL=data \(partition 2, ext4\)/);
	assert.match(text, /retained entries \(\/etc\/reimage\/retention\.list\): 2 kept, 1 optional\s+missing, 1\s+skipped\n/);
	assert.match(text, /\n {2}kept {5}\/etc\/machine-id \(file, line 1\)\n/);
	assert.match(text, /\n {2}missing {2}\/etc\/opt\/site\.conf \(line 4: optional, not on the old system\)\n/);
	assert.match(text, /\n {2}skipped {2}\/etc\/ssh\/agent\.sock \(line 3: a socket: special files are not\s+retained\)\n/);
	assert.match(text, /192 MiB image, 2\.0 MiB of it data \(the block map\), zstd/);
	assert.match(text, /proof: the compressed sha256 before writing/);
	assert.match(text, /needs 420 MiB, 2\.9 GiB available\n/);
	assert.match(text, /320 MiB past the image's end stays unused: run with --grow to give it to the\s+last\s+partition\n/);
});

test('the plan says when RAM is short, when --grow takes the room, and when nothing is kept', () => {
	const base = report();
	const p = base.plan;
	assert.ok(p);
	const text = renderPlan({
		...base,
		planned: [],
		entries: [],
		plan: { ...p, ram: { need: 4000 * MiB, available: 1000 * MiB }, unused: { bytes: 320 * MiB, grow: true } },
	});
	assert.match(text, /needs 3\.9 GiB, 1000 MiB available: NOT ENOUGH, a run is refused \(exit 6\)/);
	assert.match(text, /320 MiB past the image's end: --grow gives it to the last partition/);
	assert.match(text, /0 kept, 0 optional\s+missing, 0\s+skipped\n {2}\(none: nothing of the old system is kept\)/);
});

test.run();
