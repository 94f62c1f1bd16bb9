// settle: the kernel's partitions brought in line with a table, with bounded
// retries, on the fake Sys (captured sysfs trees of a GPT loop disk and of an
// MBR disk with an extended partition). No test sleeps: the fake clock moves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import { identify, sameParts, settle, type Expected } from '../../../src/target/partitions.ts';
import { inspect } from '../../../src/target/sysfs.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys, sysfsDropPartitions, sysfsPartition } from '../../helpers/fake-sys.ts';

const GPT: Expected[] = [
	{ number: 1, start: 2048, size: 40960 },
	{ number: 2, start: 43008, size: 86016 },
];
const quiet = () => createLog({ write: () => {} }, Date.now, true);

async function gptDisk() {
	const f = fakeSys().sysfs('sysfs-gpt');
	const d = await inspect('/dev/loop9', f);
	if (!d) throw new Error('fixture: /dev/loop9 is not a disk');
	return { f, d };
}

test('a kernel that already agrees: one reread, nodes by partition number, no retry, no sleep', async () => {
	const { f, d } = await gptDisk();
	f.script('blockdev --rereadpt /dev/loop9');
	const nodes = await settle(d, GPT, quiet(), { exit: 'afterWrite' }, f);
	assert.equal(
		[...nodes],
		[
			[1, '/dev/loop9p1'],
			[2, '/dev/loop9p2'],
		],
	);
	assert.equal(f.calls, ['blockdev --rereadpt /dev/loop9']);
	assert.equal(f.sleeps, []);
	f.done();
});

test('succeeds on the third try: busy rereads, then partx adds the partitions; waits delayMs between tries', async () => {
	const { f, d } = await gptDisk();
	sysfsDropPartitions(f, 'loop9');
	let partx = 0;
	f.script('blockdev --rereadpt /dev/loop9', { exitCode: 1, stderr: 'Device or resource busy' });
	f.script('partx -u /dev/loop9', () => {
		if (++partx === 3) for (const [i, p] of GPT.entries()) sysfsPartition(f, 'loop9', { ...p, dev: `259:${i}` });
		return {};
	});
	f.script('partx -a /dev/loop9', { exitCode: 0 });
	const lines: string[] = [];
	const log = createLog({ write: (t) => lines.push(t) }, f.clock);
	const t0 = f.clock();
	const nodes = await settle(d, GPT, log, { exit: 'afterWrite', delayMs: 250 }, f);
	assert.equal([...nodes.keys()], [1, 2]);
	assert.equal(f.sleeps, [250, 250]);
	assert.is(f.clock() - t0, 500);
	assert.is(f.calls.filter((c) => c === 'blockdev --rereadpt /dev/loop9').length, 3);
	assert.match(lines.join(''), /not settled yet \(try 2\/20, disk busy\)/);
	f.done();
});

test("gives up after the bound with the caller's exit, naming the process that keeps the disk busy", async () => {
	const { f, d } = await gptDisk();
	sysfsDropPartitions(f, 'loop9');
	f.script('blockdev --rereadpt /dev/loop9', { exitCode: 1 });
	f.script('partx -u /dev/loop9', { exitCode: 1, stderr: 'partx: error adding partition 1' });
	f.script('partx -a /dev/loop9', { exitCode: 1 });
	f.file('proc/4242/comm', 'udevd').file('proc/4242/fd/7', '-> /dev/loop9p2').device('/dev/loop9p2', '259:1');
	const err = await settle(d, GPT, quiet(), { exit: 'afterWrite', attempts: 4, delayMs: 100 }, f).catch((e: unknown) => e);
	assert.instance(err, ReimageError);
	const e = err as ReimageError;
	assert.is(e.exit, 'afterWrite');
	assert.match(e.message, /do not match the table on it after 4 tries \(disk busy: loop9p2 is open in process 4242 \(udevd\)\)/);
	assert.equal(f.sleeps, [100, 100, 100]);
	assert.is(f.calls.filter((c) => c.startsWith('blockdev')).length, 4);
	f.done();
});

test('a partition of the wrong size never settles (the kernel keeps an old size)', async () => {
	const { f, d } = await gptDisk();
	f.script('blockdev --rereadpt /dev/loop9');
	f.script('partx -u /dev/loop9');
	const want = [GPT[0]!, { number: 2, start: 43008, size: 90000 }];
	const err = await settle(d, want, quiet(), { exit: 'target', attempts: 2, delayMs: 1 }, f).catch((e: unknown) => e);
	assert.instance(err, ReimageError);
	assert.is((err as ReimageError).exit, 'target');
	assert.match((err as ReimageError).message, /after 2 tries: stop what holds the disk/);
	assert.ok(!f.calls.includes('partx -a /dev/loop9'), 'partx -a is only for missing partitions');
	f.done();
});

test('a partition node that never appears (no devtmpfs) is named with its device number', async () => {
	const { f, d } = await gptDisk();
	f.script('blockdev --rereadpt /dev/loop9');
	f.device('/dev/loop9p1', '259:77');
	const err = await settle(d, GPT, quiet(), { exit: 'afterWrite', attempts: 3, delayMs: 10 }, f).catch((e: unknown) => e);
	assert.match((err as Error).message, /partition node \/dev\/loop9p1 \(259:0\) did not appear/);
	assert.equal(f.sleeps, [10, 10, 10]);
	f.done();
});

test('MBR: the kernel shows the extended partition as 1 KiB, not its size in the table, and partx -u leaves the logical ones out', async () => {
	// Captured: after partx -u the kernel has p1 and the extended p2 (2 sectors) only.
	const f = fakeSys().sysfs('sysfs-mbr-ext');
	const d = await inspect('/dev/loop8', f);
	f.script('blockdev --rereadpt /dev/loop8');
	f.script('partx -u /dev/loop8');
	f.script('partx -a /dev/loop8', () => {
		sysfsPartition(f, 'loop8', { number: 5, start: 45056, size: 20480, dev: '259:6' });
		sysfsPartition(f, 'loop8', { number: 6, start: 67584, size: 63488, dev: '259:7' });
		return { exitCode: 1, stderr: 'partx: /dev/loop8: error adding partitions 1-2' };
	});
	const want: Expected[] = [
		{ number: 1, start: 2048, size: 40960 },
		{ number: 2, start: 43008, size: 88064, container: true },
		{ number: 5, start: 45056, size: 20480 },
		{ number: 6, start: 67584, size: 63488 },
	];
	const nodes = await settle(d!, want, quiet(), { exit: 'target', attempts: 2, delayMs: 1 }, f);
	assert.equal([...nodes.keys()], [1, 2, 5, 6]);
	// Only a container may be smaller in the kernel; any other partition must match exactly.
	const err = await settle(
		d!,
		want.map((p) => ({ ...p, container: false })),
		quiet(),
		{ exit: 'target', attempts: 1, delayMs: 1 },
		f,
	).catch((e: unknown) => e);
	assert.instance(err, ReimageError);
	f.done();
});

test('identify: label, UUID, GPT name and PARTUUID from the captured blkid of each node (lowercased ids)', async () => {
	const f = fakeSys().captured('blkid-gpt-p1').captured('blkid-gpt-p2');
	const ids = await identify(
		new Map([
			[1, '/dev/loop9p1'],
			[2, '/dev/loop9p2'],
		]),
		f,
	);
	assert.equal(ids[0], {
		node: '/dev/loop9p1',
		number: 1,
		label: 'root',
		uuid: '0b8c4a4e-2f0b-4e59-9a8e-3f7f3c1d2e01',
		partlabel: 'root',
		partuuid: 'ce7d8ca2-f32b-bc47-8f37-de26ae2adc07',
		fstype: 'ext4',
	});
	assert.is(ids[1]?.label, 'data');
	f.done();
});

test('sameParts: number, start and size must all match', () => {
	const e = [
		{ number: 1, start: 256, size: 10240 },
		{ number: 2, start: 10496, size: 13824 },
	];
	assert.ok(sameParts(e, e));
	assert.not.ok(sameParts([e[0]!], e));
	assert.not.ok(sameParts([e[0]!, { ...e[1]!, size: 13823 }], e));
	// sysfs units (512 bytes) against a 4Kn table: no match unless converted (sysfs.ts inSectors).
	assert.not.ok(
		sameParts(
			[
				{ number: 1, start: 2048, size: 81920 },
				{ number: 2, start: 83968, size: 110592 },
			],
			e,
		),
	);
});

test('sameParts: an extended MBR partition matches on its start only (the kernel keeps a 1 KiB stub)', () => {
	const e = [
		{ number: 1, start: 2048, size: 81920 },
		{ number: 2, start: 83968, size: 79872, container: true },
		{ number: 5, start: 86016, size: 32768 },
	];
	assert.ok(sameParts([e[0]!, { number: 2, start: 83968, size: 2 }, e[2]!], e));
	assert.not.ok(sameParts([e[0]!, { number: 2, start: 83970, size: 2 }, e[2]!], e));
	// A logical partition's size is compared as usual.
	assert.not.ok(sameParts([e[0]!, { number: 2, start: 83968, size: 2 }, { ...e[2]!, size: 2 }], e));
});

test.run();
