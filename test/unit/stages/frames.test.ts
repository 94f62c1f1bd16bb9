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
import { decodeFrames, shareOut } from '../../../src/stages/frames.ts';
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
  await decodeFrames(file, frames, shareOut(frames, list, data.length)!, 'sha256', async (block, at) => void block.copy(out, at), oneShotOnly);
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
  assert.equal(frames.map((f) => f.rawLen), [FRAME, FRAME, FRAME / 2]);
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

test('a file without a valid seek table is not seekable', async () => {
  assert.is(await readSeekTable(image), undefined);
  assert.is(await readSeekTable(edited('nofoot.zst', (b) => b.writeUInt32LE(0, b.length - 4))), undefined);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
