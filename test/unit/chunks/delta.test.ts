// The delta file (reimage-delta/1): decoded against the index it was made
// from it gives the new index byte for byte and exactly the chunks that index
// lacks (as a seed whose ids are their hashes); against another index, or
// damaged, it is refused with a sentence, never decoded into a wrong index.
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLOB_FLAGS, type ChunkIndex, chunkSize, chunkStart, formatIndex, idHex, indexCount } from '../../../src/chunks/caibx.ts';
import { decodeDelta, encodeDelta } from '../../../src/chunks/delta.ts';

const sizes = { min: 64, avg: 256, max: 1024 };
/** An index over BLOB cut at CUTS, ids the SHA512/256 of each chunk. */
function indexOf(blob: Buffer, cuts: number[]): ChunkIndex {
	const ends = Float64Array.from([...cuts, blob.length]);
	const ids = Buffer.concat(
		[...ends].map((e, i) =>
			createHash('sha512-256')
				.update(blob.subarray(i ? (ends[i - 1] as number) : 0, e))
				.digest(),
		),
	);
	return { flags: BLOB_FLAGS, sizes, ends, ids };
}
const chunks = (x: ChunkIndex, blob: Buffer) => (i: number) => blob.subarray(chunkStart(x, i), chunkStart(x, i) + chunkSize(x, i));

// v1: 40 chunks of 200 bytes. v2: v1's chunks 0-9, two new chunks, v1's 20-29 moved before 10-19, one new, v1's 5 again, the rest dropped.
const v1blob = randomBytes(40 * 200);
const v1 = indexOf(
	v1blob,
	Array.from({ length: 39 }, (_, i) => (i + 1) * 200),
);
const part = (i: number) => v1blob.subarray(i * 200, i * 200 + 200);
const fresh = [randomBytes(300), randomBytes(1000), randomBytes(77)];
const pieces = [
	...Array.from({ length: 10 }, (_, i) => part(i)),
	fresh[0]!,
	fresh[1]!,
	...Array.from({ length: 10 }, (_, i) => part(20 + i)),
	...Array.from({ length: 10 }, (_, i) => part(10 + i)),
	fresh[2]!,
	part(5),
];
const v2blob = Buffer.concat(pieces);
let at = 0;
const v2 = indexOf(
	v2blob,
	pieces.slice(0, -1).map((p) => (at += p.length)),
);

test('decoded against its own index: the new index byte for byte, and a seed of exactly the chunks the old one lacks', () => {
	const d = encodeDelta(v1, v2, chunks(v2, v2blob));
	const back = decodeDelta(d.file, d.raw, v1);
	if (typeof back === 'string') throw new Error(back);
	assert.ok(formatIndex(back.index).equals(formatIndex(v2)));
	assert.ok(back.data.equals(Buffer.concat(fresh)));
	assert.equal(
		Array.from({ length: indexCount(back.dataIndex) }, (_, i) => idHex(back.dataIndex, i)),
		[11, 12, 33].map((i) => idHex(v2, i - 1)),
	);
	// The old index's chunks cost about a byte each before compression: far below the 40 of an index record.
	assert.ok(d.raw < 56 + 2 * 34 + 1400 + 64, `payload ${d.raw} bytes`);
});

test('against another index, truncated, or with another stated size: a sentence, never an index', () => {
	const d = encodeDelta(v1, v2, chunks(v2, v2blob));
	const other = indexOf(
		randomBytes(40 * 200),
		Array.from({ length: 39 }, (_, i) => (i + 1) * 200),
	);
	const r = decodeDelta(d.file, d.raw, other);
	// The sizes agree, the ids do not: the decoded index differs (the caller's sha256 check refuses it).
	assert.ok(typeof r === 'string' || !formatIndex(r.index).equals(formatIndex(v2)));
	const short = indexOf(
		v1blob.subarray(0, 2000),
		Array.from({ length: 9 }, (_, i) => (i + 1) * 200),
	);
	assert.match(
		String(decodeDelta(d.file, d.raw, short)),
		/names chunk \d+ of the old index, which has 10: it was made against another index/,
	);
	assert.match(String(decodeDelta(d.file.subarray(0, d.file.length - 9), d.raw, v1)), /does not decompress to at most/);
	assert.match(String(decodeDelta(d.file, d.raw - 1, v1)), /does not decompress to at most|decompresses to/);
	assert.match(String(decodeDelta(d.file, d.raw + 1, v1)), /decompresses to \d+ bytes, not the \d+ the manifest says/);
	// The index it must give has a known number of chunks: a delta stating another is not decoded.
	assert.match(String(decodeDelta(d.file, d.raw, v1, 5)), /says it has 34 chunks, not the 5 its index has/);
	assert.ok(typeof decodeDelta(d.file, d.raw, v1, 34) !== 'string');
});

test.run();
