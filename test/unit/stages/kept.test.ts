// The flow's side of kept partitions on the fake Sys: after the write the
// image's table is dumped and written back whole with the kept entries added
// (one sfdisk run, before the kernel is told), and each must then be there;
// the re-entry record beside a retained set on the bundle's kept partition;
// how far --grow may count.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Manifest } from '../../../src/bundle/manifest.ts';
import type { Bundle } from '../../../src/bundle/read.ts';
import { ReimageError } from '../../../src/errors.ts';
import { dirPlace } from '../../../src/retention/archive.ts';
import type { RunOptions } from '../../../src/stages/context.ts';
import { addKept, growBytes, markPassed, REENTRY_FILE } from '../../../src/stages/kept.ts';
import { HOLDS_BUNDLE, type KeptPart } from '../../../src/target/kept.ts';
import { inspect } from '../../../src/target/sysfs.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';
import { good } from '../_manifest.ts';

const quiet = () => createLog({ write: () => {} }, Date.now, true);
const HOME = '933AC7E1-2EB4-4F13-B844-0E14E2AEF915';
const kept: KeptPart = {
	number: 3,
	node: '/dev/loop9p3',
	start: 100000,
	size: 8192,
	type: HOME,
	uuid: 'AAAAAAAA-0000-0000-0000-000000000003',
	name: 'home',
	attrs: 'RequiredPartition',
	bytes: [100000 * 512, 108192 * 512],
	why: [HOLDS_BUNDLE],
};
const DUMP = `label: gpt\nlabel-id: X\ndevice: /dev/loop9\nunit: sectors\nfirst-lba: 2048\nlast-lba: 131038\n\n/dev/loop9p1 : start=2048, size=40960, type=${HOME}, uuid=B, name="root"\n`;
const json = (parts: object[]) => ({
	stdout: JSON.stringify({ partitiontable: { label: 'gpt', id: 'X', device: '/dev/loop9', partitions: parts } }),
});

async function setup() {
	const f = fakeSys().sysfs('sysfs-gpt');
	const disk = await inspect('/dev/loop9', f);
	if (!disk) throw new Error('fixture: /dev/loop9 is not a disk');
	const m = good();
	m.table.partitions = [{ number: 1, start: 2048, size: 40960, type: HOME, fs: { type: 'ext4', label: 'root' } }];
	return { f, disk, bundle: { dir: '/b', manifest: Manifest.parse(m) } as Bundle };
}

test('addKept: the table dumped and written back whole with each kept entry at its place and number, then checked', async () => {
	const { f, disk, bundle } = await setup();
	let written = '';
	f.script('sfdisk --dump /dev/loop9', { stdout: DUMP })
		.script('sfdisk -q --no-reread --no-tell-kernel /dev/loop9', (c) => {
			written = String(c.opts.input);
			return {};
		})
		// Before: the image's table alone; after: the kept entry in it.
		.script('sfdisk --json /dev/loop9', () =>
			json(
				f.calls.includes('sfdisk -q --no-reread --no-tell-kernel /dev/loop9')
					? [{ node: '/dev/loop9p3', start: 100000, size: 8192, type: HOME, uuid: kept.uuid, name: 'home' }]
					: [],
			),
		);
	await addKept(disk, bundle, [kept], quiet(), f);
	assert.is(
		written,
		`${DUMP}/dev/loop9p3 : start=100000, size=8192, type=${HOME}, uuid=${kept.uuid}, name="home", attrs="RequiredPartition"\n`,
	);
	assert.equal(f.calls, [
		'sfdisk --json /dev/loop9',
		'sfdisk --dump /dev/loop9',
		'sfdisk -q --no-reread --no-tell-kernel /dev/loop9',
		'sfdisk --json /dev/loop9',
	]);
	f.done();
});

test('addKept: a table that already carries every kept entry (the write stage merged them into the first MiB) is left alone', async () => {
	const { f, disk, bundle } = await setup();
	f.script(
		'sfdisk --json /dev/loop9',
		json([{ node: '/dev/loop9p3', start: 100000, size: 8192, type: HOME, uuid: kept.uuid, name: 'home' }]),
	);
	await addKept(disk, bundle, [kept], quiet(), f);
	assert.equal(f.calls, ['sfdisk --json /dev/loop9']);
	f.done();
});

test('addKept: nothing kept runs nothing; a kept entry missing afterwards is a written-phase error (exit 11) naming it', async () => {
	const { f, disk, bundle } = await setup();
	await addKept(disk, bundle, [], quiet(), f);
	assert.equal(f.calls, []);
	f.script('sfdisk --dump /dev/loop9', { stdout: DUMP })
		.script('sfdisk -q --no-reread --no-tell-kernel /dev/loop9', {})
		.script('sfdisk --json /dev/loop9', json([]));
	const e = await addKept(disk, bundle, [kept], quiet(), f).catch((x: unknown) => x);
	assert.instance(e, ReimageError);
	assert.is((e as ReimageError).code, 11);
	assert.match(
		(e as Error).message,
		/kept partition \/dev\/loop9p3 \(PARTUUID AAAAAAAA-0000-0000-0000-000000000003\) is not in the new table of \/dev\/loop9 after adding it: its bytes are untouched/,
	);
	f.done();
});

test('markPassed: the re-entry record beside the retained set on the kept partition that holds the bundle, nowhere else', async () => {
	const { f, disk, bundle } = await setup();
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-reentry-'));
	const other = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-reentry-'));
	for (const d of [dir, other]) {
		fs.mkdirSync(path.join(d, 'disk-k'));
		fs.writeFileSync(path.join(d, 'disk-k', 'retained.json'), '{}');
	}
	// The record names the bundle by its manifest's sha256.
	const bdir = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-reentry-bundle-'));
	fs.writeFileSync(path.join(bdir, 'manifest.json'), '{"m":1}');
	const places = [{ ...dirPlace(dir, true), device: '/dev/loop9p3' }, dirPlace(other, true)];
	const o = { bundlePart: '/dev/loop9p3', bundleLocation: 'PARTLABEL=home:/bundle' } as RunOptions;
	const pre = { bundle: { ...bundle, dir: bdir }, disk, kept: [kept], keep: { places, key: 'disk-k' } };
	// A place that did not take this run's set (full, unwritable) may hold an older one: no record there.
	await markPassed(
		{ o, log: quiet() },
		pre,
		[{ where: path.join(other, 'disk-k'), survivesReboot: true }],
		new Date('2026-01-02T03:04:05Z'),
	);
	assert.not.ok(fs.existsSync(path.join(dir, 'disk-k', REENTRY_FILE)), 'a record beside a set this run did not save');
	await markPassed({ o, log: quiet() }, pre, [{ where: path.join(dir, 'disk-k'), survivesReboot: true }], new Date('2026-01-02T03:04:05Z'));
	const rec = JSON.parse(fs.readFileSync(path.join(dir, 'disk-k', REENTRY_FILE), 'utf8')) as Record<string, unknown>;
	assert.equal(
		[rec.format, rec.passed, rec.archive, (rec.bundle as { location: string }).location],
		['reimage-reentry/1', '2026-01-02T03:04:05.000Z', 'disk-k', 'PARTLABEL=home:/bundle'],
	);
	assert.equal(
		(rec.kept as { partuuid: string }[]).map((k) => k.partuuid),
		[kept.uuid],
	);
	// The bundle's manifest and the archive index by sha256, the first attempt.
	assert.equal(
		[(rec.bundle as { manifestSha256: string }).manifestSha256, rec.archiveSha256, rec.attempt],
		[createHash('sha256').update('{"m":1}').digest('hex'), createHash('sha256').update('{}').digest('hex'), 1],
	);
	assert.not.ok(fs.existsSync(path.join(other, 'disk-k', REENTRY_FILE)), 'written to a place that is not the kept partition');
	// Kept, but not holding the bundle (a /home): no record.
	fs.rmSync(path.join(dir, 'disk-k', REENTRY_FILE));
	await markPassed({ o, log: quiet() }, { ...pre, kept: [{ ...kept, why: ['PARTLABEL=home'] }] }, [
		{ where: path.join(dir, 'disk-k'), survivesReboot: true },
	]);
	assert.not.ok(fs.existsSync(path.join(dir, 'disk-k', REENTRY_FILE)));
	for (const d of [dir, other, bdir]) fs.rmSync(d, { recursive: true });
	f.done();
});

test('growBytes: --grow counts up to the first kept partition after the image, else the whole disk', () => {
	assert.is(growBytes([kept], 40 << 20, 1 << 30), kept.bytes[0] + (1 << 20));
	assert.is(growBytes([kept], kept.bytes[1], 1 << 30), 1 << 30);
	assert.is(growBytes([], 50 << 20, 1 << 30), 1 << 30);
});

test.run();
