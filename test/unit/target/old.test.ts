// oldPartitions: the old system's partitions found from its table (captured
// sfdisk --json), settled and identified (captured blkid), on the fake Sys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import { oldPartitions } from '../../../src/target/old.ts';
import { inspect } from '../../../src/target/sysfs.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys, sysfsPartition, type FakeSys } from '../../helpers/fake-sys.ts';

function logged() {
	const lines: string[] = [];
	return { lines, log: createLog({ write: (t) => lines.push(t) }, Date.now) };
}

async function disk(f: FakeSys, path = '/dev/loop9') {
	const d = await inspect(path, f);
	if (!d) throw new Error(`fixture: ${path} is not a disk`);
	return d;
}

test('a disk without a partition table has no old partitions, and nothing else is run', async () => {
	const f = fakeSys().sysfs('sysfs-gpt').captured('sfdisk-none');
	const { log } = logged();
	assert.equal(await oldPartitions(await disk(f), 'retained entries', log, f), []);
	assert.equal(f.calls, ['sfdisk --json /dev/loop9']);
	f.done();
});

test('a GPT old system: each partition settled and identified by label and GPT name', async () => {
	const f = fakeSys().sysfs('sysfs-gpt').captured('sfdisk-gpt').captured('blkid-gpt-p1').captured('blkid-gpt-p2');
	f.script('blockdev --rereadpt /dev/loop9');
	const { log } = logged();
	const parts = await oldPartitions(await disk(f), 'retained entries', log, f);
	assert.equal(
		parts.map((p) => [p.node, p.number, p.label, p.partlabel, p.fstype]),
		[
			['/dev/loop9p1', 1, 'root', 'root', 'ext4'],
			['/dev/loop9p2', 2, 'data', 'data', 'ext4'],
		],
	);
	f.done();
});

test('an MBR old system with logical partitions in an extended one is found (not refused as unsettled)', async () => {
	const f = fakeSys().sysfs('sysfs-mbr-ext').captured('sfdisk-mbr-ext').captured('blkid-mbr-p1').captured('blkid-mbr-p5');
	f.script('blockdev --rereadpt /dev/loop8');
	f.script('partx -u /dev/loop8');
	f.script('partx -a /dev/loop8', () => {
		sysfsPartition(f, 'loop8', { number: 5, start: 45056, size: 20480, dev: '259:6' });
		sysfsPartition(f, 'loop8', { number: 6, start: 67584, size: 63488, dev: '259:7' });
		return { exitCode: 1 };
	});
	f.script('blkid -p -o export /dev/loop8p2', { exitCode: 2 });
	f.script('blkid -p -o export /dev/loop8p6', { exitCode: 2 });
	const { log } = logged();
	const parts = await oldPartitions(await disk(f, '/dev/loop8'), 'retained entries', log, f);
	assert.equal(
		parts.map((p) => [p.number, p.label]),
		[
			[1, 'mroot'],
			[2, undefined],
			[5, undefined],
			[6, undefined],
		],
	);
	assert.equal(f.sleeps, []);
	f.done();
});

test('a stale table (ends past a smaller disk) is refused when something must be read, ignored with a warning otherwise', async () => {
	const f = fakeSys().sysfs('sysfs-gpt').captured('sfdisk-gpt');
	f.file('sys/devices/virtual/block/loop9/size', '65536');
	const d = await disk(f);
	const err = await oldPartitions(d, 'the retained entries', logged().log, f).catch((e: unknown) => e);
	assert.instance(err, ReimageError);
	assert.is((err as ReimageError).exit, 'target');
	assert.match(
		(err as Error).message,
		/says partition 2 ends at sector 129024, past the disk's end \(65536 sectors of 512 bytes\).*cannot be read from the old system: repair the old table, or reimage without retaining/,
	);
	const { lines, log } = logged();
	assert.equal(await oldPartitions(d, undefined, log, f), []);
	assert.match(lines.join(''), /warning: the old partition table of \/dev\/loop9 says partition 2 ends/);
	assert.equal(f.calls, ['sfdisk --json /dev/loop9', 'sfdisk --json /dev/loop9'], 'no reread of a stale table');
	f.done();
});

test('a table the kernel will not take: refused when needed, ignored when nothing is read', async () => {
	const f = fakeSys().sysfs('sysfs-gpt').captured('sfdisk-gpt');
	f.file('sys/devices/virtual/block/loop9/loop9p2/size', '4096');
	f.script('blockdev --rereadpt /dev/loop9').script('partx -u /dev/loop9');
	const d = await disk(f);
	const err = await oldPartitions(d, 'retained entries', logged().log, f).catch((e: unknown) => e);
	assert.match((err as Error).message, /do not match the table on it after 5 tries/);
	assert.equal(f.sleeps, [200, 200, 200, 200]);
	const { lines, log } = logged();
	assert.equal(await oldPartitions(d, undefined, log, f), []);
	assert.match(lines.join(''), /cannot be brought in line with the kernel/);
	f.done();
});

test.run();
