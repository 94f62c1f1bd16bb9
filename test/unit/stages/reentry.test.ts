// The re-entry record (stages/reentry.ts): found only for this bundle (its
// manifest's sha256) on this disk, never when done; a matching record whose
// archive is missing, altered or unreadable is exit 11, never an empty identity.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Bundle } from '../../../src/bundle/read.ts';
import { ReimageError } from '../../../src/errors.ts';
import { dirPlace } from '../../../src/retention/archive.ts';
import {
	findReentry,
	keptFromRecord,
	markDone,
	REENTRY_FILE,
	REENTRY_FORMAT,
	type ReentryRecord,
	writeRecord,
} from '../../../src/stages/reentry.ts';
import type { Disk } from '../../../src/target/sysfs.ts';
import { createLog } from '../../../src/util/log.ts';

const KEY = 'disk-k';
const disk = { node: '/dev/sda', serial: 'S1', wwn: 'W1', size: 1 << 30 } as Disk;

function setup() {
	const lines: string[] = [];
	const log = createLog({ write: (l: string) => void lines.push(l) }, Date.now, false);
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-reentry-unit-'));
	const bdir = path.join(root, 'bundle');
	fs.mkdirSync(path.join(bdir, 'reimage-retained', KEY), { recursive: true });
	fs.writeFileSync(path.join(bdir, 'manifest.json'), '{"m":1}');
	const dir = path.join(bdir, 'reimage-retained');
	fs.writeFileSync(path.join(dir, KEY, 'retained.json'), '{"not":"an index"}');
	const bundle = { dir: bdir } as Bundle;
	const record = async (over: Partial<ReentryRecord['bundle']> = {}, extra: Partial<ReentryRecord> = {}) => {
		const manifestSha256 = (await import('node:crypto')).createHash('sha256').update('{"m":1}').digest('hex');
		await writeRecord(dir, KEY, {
			format: REENTRY_FORMAT,
			passed: '2026-01-01T00:00:00.000Z',
			attempt: 1,
			bundle: { location: 'PARTUUID=x:/bundle', rawSha256: 'r', manifestSha256, ...over },
			archive: KEY,
			disk: { node: '/dev/sda', serial: 'S1', wwn: 'W1', size: 1 << 30 },
			kept: [{ number: 3, start: 2048, size: 8, type: 'T', partuuid: 'P', name: 'home' }],
			...extra,
		});
	};
	return { lines, log, root, dir, bundle, record, places: [dirPlace(dir, true)] };
}

test('a record for another bundle, another disk, or already done is ignored (with a warning for the first two)', async () => {
	const s = setup();
	assert.is(await findReentry(s.places, KEY, s.bundle, disk, s.log), undefined, 'no record');
	await s.record({ manifestSha256: '0'.repeat(64) });
	assert.is(await findReentry(s.places, KEY, s.bundle, disk, s.log), undefined);
	assert.match(s.lines.join('\n'), /re-entry record .* is for another bundle .*: ignored/);
	await s.record({}, { disk: { node: '/dev/sdb', serial: 'S2', size: 1 << 30 } });
	assert.is(await findReentry(s.places, KEY, s.bundle, disk, s.log), undefined);
	assert.match(s.lines.join('\n'), /is for another disk \(serial S2/);
	await s.record();
	await markDone(s.places, KEY, s.log);
	assert.ok(JSON.parse(fs.readFileSync(path.join(s.dir, KEY, REENTRY_FILE), 'utf8')).done);
	assert.is(await findReentry(s.places, KEY, s.bundle, disk, s.log), undefined);
	fs.rmSync(s.root, { recursive: true });
});

test('a matching record whose archive is altered, unreadable or missing is exit 11 naming it', async () => {
	const s = setup();
	const refused = async (re: RegExp) => {
		const e = await findReentry(s.places, KEY, s.bundle, disk, s.log).catch((x: unknown) => x);
		assert.instance(e, ReimageError);
		assert.is((e as ReimageError).code, 11);
		assert.match((e as Error).message, re);
	};
	await s.record();
	await refused(/archive .* is unreadable/);
	fs.writeFileSync(path.join(s.dir, KEY, 'retained.json'), '{"altered":1}');
	await refused(/index has sha256 [0-9a-f]{64}, not the [0-9a-f]{64} recorded: nothing is restored from it/);
	fs.rmSync(path.join(s.dir, KEY, 'retained.json'));
	await refused(/has no retained.json/);
	assert.ok(fs.existsSync(path.join(s.dir, KEY, REENTRY_FILE)), 'the record was dropped');
	fs.rmSync(s.root, { recursive: true });
});

test('a record that used up its attempts (the policy reentryAttempts, default 10) is exit 11: the run stops instead of writing again', async () => {
	const s = setup();
	for (const [attempt, limit] of [
		[10, undefined],
		[3, 3],
	] as const) {
		await s.record({}, { attempt });
		const e = await findReentry(s.places, KEY, s.bundle, disk, s.log, limit).catch((x: unknown) => x);
		assert.instance(e, ReimageError);
		assert.is((e as ReimageError).code, 11);
		assert.match(
			(e as Error).message,
			new RegExp(
				`${attempt} runs with this bundle passed the point of no return .* none finished \\(the limit is ${attempt}, policy reentryAttempts\\): this run stops instead of writing again`,
			),
		);
	}
	// One below the limit still re-enters (its archive is checked next: here it is unreadable).
	await s.record({}, { attempt: 9 });
	const e = await findReentry(s.places, KEY, s.bundle, disk, s.log).catch((x: unknown) => x);
	assert.match((e as Error).message, /is unreadable/);
	fs.rmSync(s.root, { recursive: true });
});

test('keptFromRecord: the kept partitions as recorded, bytes by the sector size', () => {
	const r = { kept: [{ number: 3, start: 2048, size: 8, type: 'T', partuuid: 'P' }] } as ReentryRecord;
	const [k] = keptFromRecord(r, '/dev/loop9', 512);
	assert.equal([k?.node, k?.bytes], ['/dev/loop9p3', [2048 * 512, 2056 * 512]]);
	assert.is(keptFromRecord(r, '/dev/sda', 4096)[0]?.node, '/dev/sda3');
});

test.run();
