// The settle stage on the fake Sys (captured sfdisk, blkid and sysfs of a GPT
// loop disk): after the write, the backup GPT moved to the disk's end, the
// table compared with the manifest, the partitions settled and identified.
// Every failure here is past the point of no return, so it says "written".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Manifest } from '../../../src/bundle/manifest.ts';
import type { Bundle } from '../../../src/bundle/read.ts';
import { ReimageError } from '../../../src/errors.ts';
import type { Run, RunOptions } from '../../../src/stages/context.ts';
import type { Passed } from '../../../src/stages/phase.ts';
import { settle } from '../../../src/stages/settle.ts';
import { inspect } from '../../../src/target/sysfs.ts';
import { createCleanup } from '../../../src/util/cleanup.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';
import { good } from '../_manifest.ts';

const quiet = () => createLog({ write: () => {} }, Date.now, true);

// setup: the fake GPT disk (64 MiB) and a Passed for an image of RAW bytes whose table is PARTS.
async function setup(
	raw: number,
	parts = [
		{ number: 1, start: 2048, size: 40960, type: 'L', fs: { type: 'ext4', label: 'root' } },
		{ number: 2, start: 43008, size: 86016, type: 'L', fs: { type: 'ext4', label: 'data' } },
	],
	o: Partial<RunOptions> = {},
) {
	const f = fakeSys().sysfs('sysfs-gpt');
	const disk = await inspect('/dev/loop9', f);
	if (!disk) throw new Error('fixture: /dev/loop9 is not a disk');
	const m = good();
	m.raw.size = raw;
	m.table.partitions = parts;
	const manifest = Manifest.parse(m);
	const log = quiet();
	const run: Run = {
		o: { grow: false, ...o } as RunOptions,
		log,
		cleanup: createCleanup(log),
		runDir: '/nonexistent',
		sys: f,
		plan: false,
		notes: [],
	};
	const p = {
		disk,
		bundle: { manifest } as Bundle,
		image: '/nonexistent',
		captured: [],
		ids: { users: new Map(), groups: new Map() },
		kept: [],
	} as unknown as Passed;
	return { f, run, p };
}

const settled = (f: ReturnType<typeof fakeSys>) =>
	f
		.captured('sfdisk-gpt')
		.script('blockdev --rereadpt /dev/loop9')
		.script('blockdev --flushbufs /dev/loop9')
		.script('blockdev --flushbufs /dev/loop9p1')
		.script('blockdev --flushbufs /dev/loop9p2')
		.captured('blkid-gpt-p1')
		.captured('blkid-gpt-p2');

test('an image smaller than the disk: backup GPT moved to the end, partitions settled, flushed and identified', async () => {
	const { f, run, p } = await setup(66 * 2 ** 20 - 32 * 2 ** 20);
	settled(f).script('sfdisk --relocate gpt-bak-std --no-reread --no-tell-kernel /dev/loop9');
	const parts = await settle(run, p);
	assert.equal(
		parts.map((x) => `${x.node} ${x.number} ${x.label} ${x.partlabel} ${x.fstype}`),
		['/dev/loop9p1 1 root root ext4', '/dev/loop9p2 2 data data ext4'],
	);
	assert.is(f.calls[0], 'sfdisk --relocate gpt-bak-std --no-reread --no-tell-kernel /dev/loop9');
	f.done();
});

test('an image as large as the disk: the backup GPT is already at the end, nothing relocated', async () => {
	const { f, run, p } = await setup(131072 * 512);
	settled(f);
	await settle(run, p);
	assert.not.ok(f.calls.some((c) => c.includes('--relocate')));
	f.done();
});

test('no table after writing, or one unlike the manifest: a written-phase error that says run again', async () => {
	{
		const { f, run, p } = await setup(131072 * 512);
		f.captured('sfdisk-none');
		const e = await settle(run, p).catch((x: unknown) => x);
		assert.instance(e, ReimageError);
		assert.is((e as ReimageError).code, 11);
		assert.match((e as Error).message, /\/dev\/loop9 shows no partition table after writing: the write did not land; run reimage again/);
		f.done();
	}
	{
		const { f, run, p } = await setup(131072 * 512, [
			{ number: 1, start: 2048, size: 40000, type: 'L', fs: { type: 'ext4', label: 'root' } },
		]);
		f.captured('sfdisk-gpt');
		const e = await settle(run, p).catch((x: unknown) => x);
		assert.is((e as ReimageError).code, 11);
		assert.match((e as Error).message, /partition 1 on \/dev\/loop9 does not match the manifest after writing: run reimage again/);
		f.done();
	}
});

test('--grow: the last partition is grown, and a size that differs only there is accepted', async () => {
	const { f, run, p } = await setup(
		131072 * 512,
		[
			{ number: 1, start: 2048, size: 40960, type: 'L', fs: { type: 'ext4', label: 'root' } },
			{ number: 2, start: 43008, size: 20000, type: 'L', fs: { type: 'ext4', label: 'data' } },
		],
		{ grow: true },
	);
	settled(f)
		.script('sfdisk --no-reread --no-tell-kernel -q -N 2 /dev/loop9')
		.script('e2fsck -f -p /dev/loop9p2')
		.script('resize2fs /dev/loop9p2');
	await settle(run, p);
	assert.ok(f.calls.includes('sfdisk --no-reread --no-tell-kernel -q -N 2 /dev/loop9'));
	f.done();
});

test.run();
