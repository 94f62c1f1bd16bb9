import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { checkList, decodeStream } from '../../../src/image/decode.ts';
import { BLOCK, RawMismatch, type Sink } from '../../../src/image/mismatch.ts';
import type { Decoded } from '../../../src/codecs/types.ts';
import type { Manifest } from '../../../src/bundle/manifest.ts';

const data = Buffer.alloc(BLOCK * 2 + 12345);
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const manifest = (size: number, sha256: string) => ({ raw: { size, sha256 } }) as Manifest;
// The stream path checked against the manifest's raw sha256 (no block map).
const decodeVerified = (d: Decoded, m: Manifest, sink: Sink) => {
	const { list, hash } = checkList(m, undefined);
	return decodeStream(d, m, list, hash, sink);
};

// Feeds `b` in odd-sized chunks, as a decompressor would.
function decoded(b: Buffer) {
	const chunks: Buffer[] = [];
	for (let i = 0; i < b.length; i += 777_777) chunks.push(b.subarray(i, i + 777_777));
	let stopped = false;
	return { d: { stream: Readable.from(chunks), done: Promise.resolve(), stop: () => void (stopped = true) }, stopped: () => stopped };
}

async function collect(b: Buffer, m: Manifest) {
	const out = Buffer.alloc(b.length + BLOCK);
	let max = 0;
	const offsets: number[] = [];
	const r = await decodeVerified(decoded(b).d, m, async (block, offset) => {
		block.copy(out, offset);
		offsets.push(offset);
		max = Math.max(max, offset + block.length);
	});
	return { r, out: out.subarray(0, max), offsets };
}

test('every byte reaches the sink at its offset, in aligned blocks, and is hashed', async () => {
	const { r, out, offsets } = await collect(data, manifest(data.length, sha(data)));
	assert.ok(out.equals(data));
	assert.equal(offsets, [0, BLOCK, 2 * BLOCK]);
	assert.is(r, data.length);
});

test('a stream longer than the raw size is cut off there', async () => {
	const short = data.subarray(0, BLOCK + 5);
	let furthest = 0;
	try {
		await decodeVerified(
			decoded(data).d,
			manifest(short.length, sha(short)),
			async (b, o) => void (furthest = Math.max(furthest, o + b.length)),
		);
		assert.unreachable();
	} catch (e) {
		assert.instance(e, RawMismatch);
		assert.match((e as Error).message, /more than the \d+ bytes/);
	}
	assert.ok(furthest <= short.length, 'nothing past the raw size was handed to the sink');
});

test('a short stream and a wrong hash are refused', async () => {
	try {
		await collect(data.subarray(0, 100), manifest(data.length, sha(data)));
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /decompresses to 100 bytes but the manifest says/);
	}
	try {
		await collect(data, manifest(data.length, 'f'.repeat(64)));
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /have sha256 [0-9a-f]{64}, but the manifest says f{64}/);
	}
});

test('a failing sink stops the decoder and its error wins', async () => {
	const { d, stopped } = decoded(data);
	try {
		await decodeVerified(d, manifest(data.length, sha(data)), async () => {
			throw new Error('EIO at 0');
		});
		assert.unreachable();
	} catch (e) {
		assert.is((e as Error).message, 'EIO at 0');
	}
	assert.ok(stopped());
});

test('a decoder failure becomes a bundle error naming the cause', async () => {
	const stream = new Readable({
		read() {
			this.destroy(new Error('incorrect header check'));
		},
	});
	try {
		await decodeVerified({ stream, done: Promise.resolve(), stop: () => {} }, manifest(10, sha(Buffer.alloc(10))), async () => {});
		assert.unreachable();
	} catch (e) {
		assert.instance(e, RawMismatch);
		assert.is((e as RawMismatch).code, 3);
		assert.match((e as Error).message, /does not decompress \(incorrect header check\)/);
	}
});

test.run();
