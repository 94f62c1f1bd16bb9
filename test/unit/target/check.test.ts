// Preflight's target checks on the fake Sys: the captured sysfs tree of a
// 64 MiB GPT loop disk, with mounts, holders, loop backers, openers and
// claims added one at a time. Every refusal is exit 4 (target), named.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import { checkTarget } from '../../../src/target/check.ts';
import { fakeSys, TOOLS } from '../../helpers/fake-sys.ts';

const MiB = 1 << 20;

async function refusal(p: Promise<unknown>): Promise<ReimageError> {
	const e = await p.then(
		() => undefined,
		(x: unknown) => x,
	);
	assert.instance(e, ReimageError, 'expected a refusal');
	return e as ReimageError;
}

test('a free whole disk passes, as the kernel describes it, without starting any process', async () => {
	const f = fakeSys().sysfs('sysfs-gpt');
	const d = await checkTarget('/dev/loop9', 60 * MiB, 512, f);
	assert.is(d.name, 'loop9');
	assert.is(d.dev, '7:0');
	assert.is(d.size, 64 * MiB);
	assert.is(d.sectorSize, 512);
	assert.is(d.backingFile, '/tmp/capture/gpt.img');
	assert.equal(
		d.partitions.map((p) => [p.name, p.number, p.start, p.size, p.dev]),
		[
			['loop9p1', 1, 2048, 40960, '259:0'],
			['loop9p2', 2, 43008, 86016, '259:1'],
		],
	);
	assert.equal(f.calls, []);
	assert.equal(f.sleeps, []);
	f.done();
});

test('not a block device, a partition, a read-only disk: each refused with what to give instead', async () => {
	const f = fakeSys().sysfs('sysfs-gpt');
	let e = await refusal(checkTarget('/dev/nothing', MiB, 512, f));
	assert.match(e.message, /target \/dev\/nothing is not a block device: give a whole disk/);
	e = await refusal(checkTarget('/dev/loop9p1', MiB, 512, f));
	assert.is(e.exit, 'target');
	assert.match(e.message, /is the partition loop9p1, not a whole disk: give the disk it belongs to/);
	f.file('sys/devices/virtual/block/loop9/ro', '1');
	e = await refusal(checkTarget('/dev/loop9', MiB, 512, f));
	assert.match(e.message, /\(loop9\) is read-only/);
	f.done();
});

test('too small by one byte, and a sector size mismatch, are refused with the numbers', async () => {
	const f = fakeSys().sysfs('sysfs-gpt');
	let e = await refusal(checkTarget('/dev/loop9', 64 * MiB + 1, 512, f));
	assert.match(e.message, /is 67108864 bytes \([^)]+\), 1 bytes too small for the 67108865-byte/);
	assert.equal(e.facts, { size: 64 * MiB, needed: 64 * MiB + 1 });
	assert.ok(await checkTarget('/dev/loop9', 64 * MiB, 512, f), 'exactly the size fits');
	e = await refusal(checkTarget('/dev/loop9', MiB, 4096, f));
	assert.match(e.message, /has 512-byte logical sectors but the image's partition table is made for 4096-byte sectors/);
	f.file('sys/devices/virtual/block/loop9/queue/logical_block_size', '4096');
	e = await refusal(checkTarget('/dev/loop9', MiB, 512, f));
	assert.match(e.message, /has 4096-byte logical sectors/);
	assert.ok(await checkTarget('/dev/loop9', MiB, undefined, f), 'an image without a table has no sector size to match');
	f.done();
});

test('busy: a mounted partition (captured mountinfo), swap, a holder and a loop backer are all named at once', async () => {
	const f = fakeSys().sysfs('sysfs-gpt');
	f.file('proc/self/mountinfo', readFileSync(join(TOOLS, 'mountinfo-gpt-p1.txt'), 'utf8').trim());
	f.file('proc/swaps', 'Filename\tType\tSize\tUsed\tPriority\n/dev/loop9p2 partition 1024 0 -2');
	f.file('sys/devices/virtual/block/loop9/loop9p2/holders/dm-0/x', '');
	f.file('sys/block/dm-0/dm/name', 'vg-root');
	f.file('sys/block/loop5/loop/backing_file', '/dev/loop9p1');
	const e = await refusal(checkTarget('/dev/loop9', MiB, 512, f));
	assert.equal(e.facts.busy, [
		"loop9p1 is mounted on /tmp/capture/mnt (umount '/tmp/capture/mnt')",
		'/dev/loop9p2 is in use as swap (swapoff /dev/loop9p2)',
		'loop9p2 is held by dm-0 (dmsetup remove vg-root)',
		'loop9p1 backs the loop device loop5 (losetup -d /dev/loop5)',
	]);
	assert.match(e.message, /^target \/dev\/loop9 is in use \(.*\): unmount or stop what uses it first$/);
	assert.equal(f.sleeps, [], 'a stacked use is refused at once, without waiting for openers');
	f.done();
});

test('an opener gets a grace period (a probe by udev lets go); one that stays is refused after it, the clock not the wall', async () => {
	const f = fakeSys().sysfs('sysfs-gpt');
	f.file('proc/31/comm', 'kiosk-app').file('proc/31/fd/4', '-> /dev/loop9p2');
	const e = await refusal(checkTarget('/dev/loop9', MiB, 512, f));
	assert.match(e.message, /loop9p2 is open in process 31 \(kiosk-app\)/);
	assert.is(f.sleeps.length, 10);
	assert.is(
		f.sleeps.reduce((a, b) => a + b, 0),
		2000,
	);
	// One that lets go during the grace passes.
	const g = fakeSys().sysfs('sysfs-gpt');
	g.file('proc/32/comm', 'blkid').file('proc/32/fd/3', '-> /dev/loop9');
	const sleep = g.sleep;
	g.sleep = async (ms) => {
		await sleep(ms);
		if (g.sleeps.length === 2) g.file('proc/32/fd/3', '-> /dev/null');
	};
	assert.ok(await checkTarget('/dev/loop9', MiB, 512, g));
	assert.is(g.sleeps.length, 2);
	f.done();
	g.done();
});

test('an exclusive claim (EBUSY) and an open that is not allowed are refused after every other check passed', async () => {
	const f = fakeSys().sysfs('sysfs-gpt');
	f.claimed.set('/dev/loop9', 'EBUSY');
	let e = await refusal(checkTarget('/dev/loop9', MiB, 512, f));
	assert.match(e.message, /is busy \(the kernel refused an exclusive open\)/);
	f.claimed.set('/dev/loop9', 'EACCES');
	e = await refusal(checkTarget('/dev/loop9', MiB, 512, f));
	assert.match(e.message, /cannot be opened \(EACCES\): run as root/);
	f.done();
});

test.run();
