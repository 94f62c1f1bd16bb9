// The parallel chunk scan gives exactly the one-pass cuts and ids, whatever
// the region borders: a border on a true cut, inside a chunk's first min
// bytes, inside a run of zeros (where the chains never meet), regions smaller
// than a chunk, a file of zeros only, and a block of repeated bytes.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Chunker, chunker, cutLength } from '../../../src/chunks/chunker.ts';
import { scanIds } from '../../../src/chunks/parallel.ts';

const dir = mkdtempSync(join(tmpdir(), 'reimage-parallel-'));
const SMALL = chunker({ min: 1024, avg: 4096, max: 16384 });
const CASYNC = chunker({ min: 16384, avg: 65536, max: 262144 });

// oneByOne: the reference — cutLength from byte 0, each chunk hashed.
function oneByOne(buf: Buffer, c: Chunker): { ends: number[]; ids: Buffer } {
	const ends: number[] = [];
	const ids: Buffer[] = [];
	for (let s = 0; s < buf.length; ) {
		let l = cutLength(buf, s, buf.length, c);
		if (l < 0) l = buf.length - s;
		ids.push(
			createHash('sha512-256')
				.update(buf.subarray(s, s + l))
				.digest(),
		);
		s += l;
		ends.push(s);
	}
	return { ends, ids: Buffer.concat(ids) };
}

let n = 0;
async function same(buf: Buffer, c: Chunker, regions: number[], what: string): Promise<void> {
	const file = join(dir, `f${n++}`);
	writeFileSync(file, buf);
	const want = oneByOne(buf, c);
	for (const region of regions) {
		const got = await scanIds(file, c, undefined, { workers: 2, region });
		assert.equal([...got.ends], want.ends, `${what}: the cuts with regions of ${region} bytes`);
		assert.ok(got.ids.equals(want.ids), `${what}: the ids with regions of ${region} bytes`);
		assert.is(got.bytes, buf.length);
		if (buf.length >= 2 * region && c.min !== c.max) assert.ok(got.regions > 1, `${what}: cut into regions`);
	}
	rmSync(file);
}

test('random data: every region size gives the one-pass cuts, also regions smaller than a chunk', async () => {
	const buf = randomBytes(1 << 20);
	await same(buf, SMALL, [5000, 100_003, 400_000], 'random');
	await same(buf, CASYNC, [7000, 300_000], 'random, casync sizes');
});

test('a region border exactly on a true cut, and one inside the first min bytes of a chunk', async () => {
	const seed = randomBytes(300_000);
	const cuts = oneByOne(seed, SMALL).ends;
	const p = cuts[5] as number;
	// 8 regions of exactly p bytes: every border is a multiple of p, the first on the 6th cut.
	await same(seed.subarray(0, 8 * p), SMALL, [p], 'border on a cut');
	// A border 100 bytes after a cut: inside the chunk's first min bytes, never looked at.
	const q = (cuts[5] as number) + 100;
	await same(seed.subarray(0, 8 * q), SMALL, [q], 'border inside min');
});

test('zeros across borders (the chains meet only after the zeros), zeros only, and repeated bytes', async () => {
	const mixed = Buffer.concat([
		randomBytes(300_000),
		Buffer.alloc(700_001),
		randomBytes(200_000),
		Buffer.alloc(50_000),
		randomBytes(123_457),
	]);
	await same(mixed, SMALL, [4096, 333_333], 'random, zeros, random');
	await same(mixed, CASYNC, [250_000, 333_333], 'random, zeros, random at casync sizes');
	await same(Buffer.alloc(1 << 20), SMALL, [100_000, 262_145], 'zeros only');
	await same(Buffer.alloc(600_000, 0xa5), SMALL, [100_000], 'one repeated byte');
	// A short period: every window alike, so the chains meet nowhere in it.
	const period = randomBytes(1000);
	await same(
		Buffer.concat([...Array.from({ length: 600 }, () => period), randomBytes(50_000)]),
		SMALL,
		[77_777, 200_000],
		'a repeated 1000-byte block',
	);
});

test('fixed-size chunks and files too small to share are scanned in one pass, with the same result', async () => {
	const buf = randomBytes(200_000);
	await same(buf, chunker({ min: 4096, avg: 4096, max: 4096 }), [10_000], 'fixed 4 KiB');
	await same(buf.subarray(0, 5), SMALL, [1], 'five bytes');
	await same(Buffer.alloc(0), SMALL, [1], 'empty');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
