import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { differences, type Fingerprint } from '../../../src/target/fingerprint.ts';

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

test.run();
