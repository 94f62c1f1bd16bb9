// The seekable zstd path end to end in-process: pack's encoder, the seek
// table reader, and the worker threads' decode-and-check, including a seek
// table that lies in either direction and a corrupt frame.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSeekable, FRAME, readSeekTable, type Frame } from '../../../src/codecs/seekable.ts';
import { decodeFrames, shareOut, WRITE_DEPTH } from '../../../src/image/frames.ts';
import { zstdCompressSync } from 'node:zlib';
import type { Extent } from '../../../src/bmap/format.ts';

const dir = mkdtempSync(join(tmpdir(), 'reimage-frames-'));
// 2.5 frames: data, zeros, data.
const data = Buffer.alloc(FRAME * 2 + FRAME / 2);
for (let i = 0; i < FRAME; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
data.fill(3, FRAME * 2);
const sha = (a: number, b: number) => createHash('sha256').update(data.subarray(a, b)).digest('hex');
const list: Extent[] = [
	{ start: 0, end: FRAME, sum: sha(0, FRAME) },
	{ start: FRAME * 2, end: data.length, sum: sha(FRAME * 2, data.length) },
];
const image = join(dir, 'image.raw');
const packed = join(dir, 'image.raw.zst');
writeFileSync(image, data);

async function decode(file: string, frames: Frame[], oneShotOnly = false): Promise<Buffer> {
	const out = Buffer.alloc(data.length);
	await decodeFrames(
		file,
		frames,
		shareOut(frames, list, data.length)!,
		'sha256',
		async (block, at) => void block.copy(out, at),
		oneShotOnly,
	);
	return out;
}

/** A copy of the packed file with edits to its bytes. */
function edited(name: string, edit: (b: Buffer) => void): string {
	const b = readFileSync(packed);
	edit(b);
	const f = join(dir, name);
	writeFileSync(f, b);
	return f;
}

test('what pack encodes, the frames decode back, every range checked', async () => {
	await encodeSeekable(image, packed);
	const frames = (await readSeekTable(packed))!;
	assert.equal(
		frames.map((f) => f.rawLen),
		[FRAME, FRAME, FRAME / 2],
	);
	assert.ok((await decode(packed, frames)).equals(data));
});

test('an extent crossing a frame, or frames not adding up to the raw size: not splittable', async () => {
	const frames = (await readSeekTable(packed))!;
	assert.is(shareOut(frames, [{ start: FRAME - 4096, end: FRAME + 4096, sum: '' }], data.length), undefined);
	assert.is(shareOut(frames, list, data.length + 512), undefined);
});

for (const oneShotOnly of [false, true]) {
	const path = oneShotOnly ? ' (the one-shot fallback)' : '';

	test(`a seek table claiming less raw data than a frame holds: refused as too big${path}`, async () => {
		const frames = (await readSeekTable(packed))!;
		// The honest frames' shares: every other frame checks out, so the lie is the only failure.
		const lying = frames.map((f, k) => (k === 0 ? { ...f, rawLen: f.rawLen - 4096 } : f));
		try {
			await decodeFrames(packed, lying, shareOut(frames, list, data.length)!, 'sha256', async () => {}, oneShotOnly);
			assert.unreachable();
		} catch (e) {
			assert.match((e as Error).message, /frame 0 decompresses to more than the \d+ bytes its seek table states/);
		}
	});

	test(`a seek table claiming more raw data than a frame holds: refused as short${path}`, async () => {
		const frames = (await readSeekTable(packed))!;
		const lying = frames.map((f, k) => (k === 2 ? { ...f, rawLen: f.rawLen + 4096 } : f));
		try {
			await decodeFrames(packed, lying, shareOut(frames, list, data.length)!, 'sha256', async () => {}, oneShotOnly);
			assert.unreachable();
		} catch (e) {
			assert.match((e as Error).message, /frame 2 decompresses to \d+ bytes, not the \d+ its seek table states/);
		}
	});
}

test('the one-shot fallback decodes and checks the same frames', async () => {
	const frames = (await readSeekTable(packed))!;
	assert.ok((await decode(packed, frames, true)).equals(data));
});

test('a corrupt frame fails to decompress or its range check, and is named', async () => {
	const frames = (await readSeekTable(packed))!;
	const bad = edited('bad.zst', (b) => {
		for (let i = 0; i < 64; i++) b[frames[0]!.cOff + 100 + i] = b[frames[0]!.cOff + 100 + i]! ^ 0x5a;
	});
	try {
		await decode(bad, frames);
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /frame 0 does not decompress|frame 0 decompresses|bytes 0 to \d+ of the image have sha256/);
	}
});

test('writes overlap (WRITE_DEPTH in flight) and a slot is never refilled while its write is in flight', async () => {
	// 24 small frames, more than the slots, so slots are reused; the sink
	// copies each block only after a random delay, so a slot refilled too early
	// would show up as wrong bytes.
	const size = 64 << 10;
	const raw = Buffer.alloc(size * 24);
	for (let i = 0; i < raw.length; i += 4) raw.writeUInt32LE((i * 2246822519 + 7) >>> 0, i);
	const frames: Frame[] = [];
	const parts: Buffer[] = [];
	const ext: Extent[] = [];
	let cOff = 0;
	for (let at = 0; at < raw.length; at += size) {
		const c = zstdCompressSync(raw.subarray(at, at + size));
		parts.push(c);
		frames.push({ cOff, cLen: c.length, rawOff: at, rawLen: size });
		ext.push({
			start: at,
			end: at + size,
			sum: createHash('sha256')
				.update(raw.subarray(at, at + size))
				.digest('hex'),
		});
		cOff += c.length;
	}
	const file = join(dir, 'small-frames.zst');
	writeFileSync(file, Buffer.concat(parts));
	const out = Buffer.alloc(raw.length);
	let inFlight = 0;
	let most = 0;
	const order: number[] = [];
	await decodeFrames(file, frames, shareOut(frames, ext, raw.length)!, 'sha256', async (block, at) => {
		order.push(at);
		most = Math.max(most, ++inFlight);
		await new Promise((r) => setTimeout(r, Math.random() * 4));
		block.copy(out, at);
		inFlight--;
	});
	assert.ok(out.equals(raw), 'every block arrives intact');
	assert.equal(
		order,
		frames.map((f) => f.rawOff),
		'writes are issued in order',
	);
	assert.is(most, WRITE_DEPTH);
});

test('a failed write: the other write in flight finishes before decodeFrames rejects', async () => {
	await encodeSeekable(image, packed);
	const frames = (await readSeekTable(packed))!;
	let settled = false;
	let secondStarted!: () => void;
	const second = new Promise<void>((r) => (secondStarted = r));
	const err = await decodeFrames(packed, frames, shareOut(frames, list, data.length)!, 'sha256', async (_block, at) => {
		if (at === 0) {
			// (Bounded, so a pipeline with one write in flight fails here instead of hanging.)
			await Promise.race([second, new Promise((r) => setTimeout(r, 5000))]);
			throw new Error('EIO at 0');
		}
		secondStarted();
		await new Promise((r) => setTimeout(r, 100));
		settled = true;
	}).catch((e: Error) => e);
	assert.is((err as Error).message, 'EIO at 0');
	assert.ok(settled, 'the second write had finished when the error was reported');
});

test('a file without a valid seek table is not seekable', async () => {
	assert.is(await readSeekTable(image), undefined);
	assert.is(await readSeekTable(edited('nofoot.zst', (b) => b.writeUInt32LE(0, b.length - 4))), undefined);
	rmSync(dir, { recursive: true, force: true });
});

test.run();
