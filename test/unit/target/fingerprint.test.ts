import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReimageError } from '../../../src/errors.ts';
import { checkFingerprint, differences, fingerprint, type Fingerprint } from '../../../src/target/fingerprint.ts';
import { inspect } from '../../../src/target/sysfs.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';

const fp = (): Fingerprint => ({
	format: 'reimage-fingerprint/1',
	disk: { size: 1000, sectorSize: 512, model: 'M', serial: 'S1', wwn: '' },
	table: {
		label: 'gpt',
		id: 'abc',
		partitions: [
			{ number: 1, start: 2048, size: 100, type: 't', uuid: 'u1', name: 'root' },
			{ number: 2, start: 4096, size: 50, type: 't' },
		],
	},
});

test('the same disk has no differences', () => {
	assert.equal(differences(fp(), fp()), []);
});

test('every difference is one readable line', () => {
	const got = fp();
	got.disk.serial = 'S2';
	got.table!.partitions[0]!.size = 101;
	got.table!.partitions.pop();
	got.table!.partitions.push({ number: 3, start: 9000, size: 5, type: 't' });
	assert.equal(differences(fp(), got), [
		'disk serial: recorded "S1", found "S2"',
		'partition 1 size: recorded 100, found 101',
		'partition 2: recorded but missing',
		'partition 3: found but not recorded',
	]);
	assert.equal(differences(fp(), { ...fp(), table: null }), ['partition table: recorded "gpt", found null']);
});

test('checkFingerprint on the fake Sys: the captured table matches its own record; a moved partition is named', async () => {
	const f = fakeSys().sysfs('sysfs-gpt').captured('sfdisk-gpt');
	const d = (await inspect('/dev/loop9', f))!;
	const rec = await fingerprint(d, f);
	assert.is(rec.table?.label, 'gpt');
	assert.equal(
		rec.table?.partitions.map((p) => [p.number, p.start, p.size, p.name]),
		[
			[1, 2048, 40960, 'root'],
			[2, 43008, 86016, 'data'],
		],
	);
	const file = join(f.root, 'fp.json');
	writeFileSync(file, JSON.stringify(rec));
	await checkFingerprint(d, file, f);
	const moved = {
		...rec,
		table: { ...rec.table!, partitions: rec.table!.partitions.map((p) => (p.number === 2 ? { ...p, size: 80000 } : p)) },
	};
	writeFileSync(file, JSON.stringify(moved));
	const e = await checkFingerprint(d, file, f).catch((x: unknown) => x);
	assert.instance(e, ReimageError);
	assert.is((e as ReimageError).exit, 'target');
	assert.match(
		(e as Error).message,
		/does not match the recorded fingerprint .*partition 2 size: recorded 80000, found 86016; this is not the disk/,
	);
	// A disk whose table is gone (sfdisk exit 1) differs in its table type.
	const g = fakeSys().sysfs('sysfs-gpt').captured('sfdisk-none');
	const e2 = await checkFingerprint((await inspect('/dev/loop9', g))!, file, g).catch((x: unknown) => x);
	assert.match((e2 as Error).message, /partition table: recorded "gpt", found null/);
	f.done();
	g.done();
});

test.run();
