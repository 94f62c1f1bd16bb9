// The .caibx format: what formatIndex writes parseIndex reads back, and every
// damaged index (truncated, wrong header, no tail, SHA-256 ids, a chunk out of
// order or over max) is refused with a sentence.
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLOB_FLAGS, type ChunkIndex, formatIndex, idHex, parseIndex } from '../../../src/chunks/caibx.ts';

const index: ChunkIndex = {
	flags: BLOB_FLAGS,
	sizes: { min: 1024, avg: 4096, max: 16384 },
	ends: Float64Array.of(4000, 9000, 9100),
	ids: randomBytes(96),
};

test('round trip: 48-byte header, 16-byte table header, 40 bytes per chunk and the tail', () => {
	const b = formatIndex(index);
	assert.is(b.length, 48 + 16 + 40 * 4);
	const back = parseIndex(b);
	if (typeof back === 'string') throw new Error(back);
	assert.equal(back, index);
	assert.is(idHex(back, 1), index.ids.toString('hex', 32, 64));
	const empty = parseIndex(formatIndex({ ...index, ends: new Float64Array(0), ids: Buffer.alloc(0) }));
	assert.ok(typeof empty !== 'string' && empty.ends.length === 0);
});

test('a damaged index is refused with what is wrong', () => {
	const b = formatIndex(index);
	const bad = (x: Buffer, re: RegExp) => {
		const r = parseIndex(x);
		assert.ok(typeof r === 'string' && re.test(r), String(r));
	};
	bad(b.subarray(0, b.length - 40), /tail marker|truncated/);
	bad(b.subarray(0, b.length - 7), /truncated/);
	bad(b.subarray(0, 50), /too short/);
	const hdr = Buffer.from(b);
	hdr.writeUInt8(0x31, 8);
	bad(hdr, /not a \.caibx/);
	const sha256 = Buffer.from(b);
	sha256.writeBigUInt64LE(0x9000000000000000n, 16);
	bad(sha256, /SHA-256/);
	bad(formatIndex({ ...index, ends: Float64Array.of(4000, 3000, 9100) }), /chunk 1 ending at 3000/);
	bad(formatIndex({ ...index, ends: Float64Array.of(4000, 30000, 30100) }), /more than its maximum/);
	bad(formatIndex({ ...index, sizes: { min: 8192, avg: 4096, max: 16384 } }), /casync refuses/);
});

test.run();
