import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { layoutDifferences, type Layout } from '../../../src/target/layout.ts';

const layout = (o: Partial<Layout> = {}): Layout => ({
	size: 100 << 20,
	sectorSize: 512,
	label: 'gpt',
	id: 'disk-guid',
	partitions: [
		{ number: 1, start: 2048, size: 81920, type: 'root-type', uuid: 'u1', name: 'root', kept: false },
		{ number: 2, start: 83968, size: 16384, type: 'data-type', uuid: 'u2', name: 'data', kept: true },
	],
	...o,
});

test('the same layout has no differences; kept flags are not part of the comparison', () => {
	assert.equal(layoutDifferences(layout(), layout()), []);
	const flipped = layout();
	flipped.partitions[0]!.kept = true;
	assert.equal(layoutDifferences(layout(), flipped), []);
});

test('every change is named: disk size, sector size, a moved, renamed, added or removed partition', () => {
	const got = layout({ size: 200 << 20, sectorSize: 4096 });
	got.partitions[1]!.start = 90000;
	got.partitions[1]!.name = 'home';
	got.partitions.push({ number: 3, start: 120000, size: 100, type: 't', kept: false });
	assert.equal(layoutDifferences(layout(), got), [
		`disk size: recorded ${100 << 20}, found ${200 << 20}`,
		'logical sector size: recorded 512, found 4096',
		'partition 2 start: recorded 83968, found 90000',
		'partition 2 name: recorded "data", found "home"',
		'partition 3: found but not recorded',
	]);
	assert.equal(layoutDifferences(layout(), layout({ partitions: [] })), [
		'partition 1: recorded but missing',
		'partition 2: recorded but missing',
	]);
});

test.run();
