import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { makeChecker } from '../../../src/image/check.ts';
import { coalesce } from '../../../src/stages/write.ts';

const image = Buffer.alloc(64 * 1024);
image.fill(7, 4096, 12288);
image.fill(9, 40960, 45056);
const sha = (a: number, b: number) => createHash('sha256').update(image.subarray(a, b)).digest('hex');
const list = [
	{ start: 4096, end: 12288, sum: sha(4096, 12288) },
	{ start: 40960, end: 45056, sum: sha(40960, 45056) },
];
const feedAll = (img: Buffer, piece: number, checkGaps = true) => {
	const c = makeChecker(list, 'sha256', createHash, checkGaps);
	const covered: [number, number][] = [];
	for (let at = 0; at < img.length; at += piece) covered.push(...c.feed(img.subarray(at, at + piece), at));
	c.done();
	return covered;
};

test('fed in any piece size, the ranges are hashed and reported as covered', () => {
	for (const piece of [1000, 4096, 65536])
		assert.equal(coalesce(feedAll(image, piece), 0), [
			[4096, 12288],
			[40960, 45056],
		]);
});

test('a flipped bit inside a range is caught with the range named', () => {
	const bad = Buffer.from(image);
	bad[5000] = bad[5000]! ^ 1;
	assert.throws(() => feedAll(bad, 4096), /bytes 4096 to 12288 of the image have sha256 [0-9a-f]{64}, but the block map says/);
});

test('data where the map promises zeros is caught, unless gaps are not checked (read-back of mapped ranges only)', () => {
	const bad = Buffer.from(image);
	bad[30000] = 1;
	assert.throws(() => feedAll(bad, 8192), /bytes 24576 to 32768 of the image are not zero, yet the block map leaves them out/);
	feedAll(bad, 8192, false);
});

test('an image that ends early is caught', () => {
	const c = makeChecker(list, 'sha256', createHash, true);
	c.feed(image.subarray(0, 8192), 0);
	assert.throws(() => c.done(), /ended before bytes 4096 to 12288 were complete/);
});

test('coalesce merges pieces across small gaps only', () => {
	assert.equal(
		coalesce(
			[
				[0, 10],
				[15, 20],
				[100, 110],
			],
			5,
		),
		[
			[0, 20],
			[100, 110],
		],
	);
});

test.run();
