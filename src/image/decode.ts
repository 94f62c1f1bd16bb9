// The write path's core: the staged image decoded into raw bytes, every byte
// checked (against the block map's per-range sha256, or the manifest's raw
// sha256 when the bundle has none; bytes the block map leaves out must be
// zero), and handed to a sink in order, in large page-aligned blocks, with
// the pieces the block map covers. The core, not the sink, checks the bytes: a
// stream longer than the manifest's raw size is cut off at that size, and the
// count is asserted at the end.
//
// Two ways through: a seekable zstd image (what pack makes) is decoded frame
// by frame on every core (frames.ts); anything else streams from its decoder
// (zlib on the thread pool, or an external tool in its own process) while
// this thread checks and the sink writes.
import { createHash } from 'node:crypto';
import { alignedBuffer } from '../util/aligned.ts';
import { codecs } from '../codecs/index.ts';
import { extents, type BlockMap, type Extent } from '../bmap/format.ts';
import { makeChecker } from './check.ts';
import type { Decoded } from '../codecs/types.ts';
import { decodeFrames, shareOut } from './frames.ts';
import { BLOCK, RawMismatch, REBUILD, type ImageSpec, type Sink } from './mismatch.ts';
import { ReimageError } from '../errors.ts';

// checkList: what the raw bytes are checked against, and with which hash.
export function checkList(m: ImageSpec, map: BlockMap | undefined): { list: Extent[]; hash: string } {
  return map ? { list: extents(map), hash: map.checksum } : { list: [{ start: 0, end: m.raw.size, sum: m.raw.sha256 }], hash: 'sha256' };
}

// decodeChecked: STAGED decoded, checked and handed to SINK; returns the raw size and how it was checked.
export async function decodeChecked(staged: string, m: ImageSpec, map: BlockMap | undefined, sink: Sink): Promise<{ size: number; checked: 'block map' | 'sha256'; frames: boolean }> {
  const { list, hash } = checkList(m, map);
  const checked = map ? ('block map' as const) : ('sha256' as const);
  const frames = await codecs[m.image.codec].frames?.(staged);
  const shares = frames && shareOut(frames, list, m.raw.size);
  if (frames && shares) {
    await decodeFrames(staged, frames, shares, hash, sink);
    return { size: m.raw.size, checked, frames: true };
  }
  return { size: await decodeStream(codecs[m.image.codec].decode(staged), m, list, hash, sink), checked, frames: false };
}

// decodeStream: a decoder's output cut into blocks, checked, and handed to the sink.
export async function decodeStream(d: Decoded, m: ImageSpec, list: readonly Extent[], hash: string, sink: Sink): Promise<number> {
  const checker = makeChecker(list, hash, createHash, true);
  // Page-aligned, so the writer can hand them to the disk with O_DIRECT.
  const bufs = [alignedBuffer(BLOCK), alignedBuffer(BLOCK)];
  let cur = 0;
  let fill = 0;
  let offset = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const sinkErrors = new Set<unknown>();
  const flush = async () => {
    await inFlight;
    const block = bufs[cur]!.subarray(0, fill);
    const at = offset;
    let covered: [number, number][];
    try {
      covered = checker.feed(block, at);
    } catch (e) {
      throw new RawMismatch(`${(e as Error).message}: the image is corrupt or altered; ${REBUILD}`);
    }
    offset += fill;
    inFlight = sink(block, at, covered).catch((e: unknown) => {
      sinkErrors.add(e);
      throw e;
    });
    inFlight.catch(() => {});
    cur ^= 1;
    fill = 0;
  };
  try {
    for await (const chunk of d.stream as AsyncIterable<Buffer>) {
      let pos = 0;
      while (pos < chunk.length) {
        const room = m.raw.size - (offset + fill);
        if (room === 0) {
          throw new RawMismatch(`the image decompresses to more than the ${m.raw.size} bytes the manifest states: it was cut off there; ${REBUILD}`);
        }
        const n = Math.min(chunk.length - pos, BLOCK - fill, room);
        chunk.copy(bufs[cur]!, fill, pos, pos + n);
        fill += n;
        pos += n;
        if (fill === BLOCK) await flush();
      }
    }
    if (fill > 0) await flush();
    await inFlight;
    await d.done;
  } catch (e) {
    d.stop();
    await inFlight.catch(() => {});
    // A decoder's own error (zlib: "incorrect header check") becomes a bundle error; the sink's and ours pass through.
    if (e instanceof ReimageError || sinkErrors.has(e)) throw e;
    throw new RawMismatch(`the image does not decompress (${(e as Error).message}): it is corrupt; ${REBUILD}`);
  }
  if (offset !== m.raw.size) {
    throw new RawMismatch(`the image decompresses to ${offset} bytes but the manifest says ${m.raw.size}: ${REBUILD}`);
  }
  try {
    checker.done();
  } catch (e) {
    throw new RawMismatch(`${(e as Error).message}: ${REBUILD}`);
  }
  return offset;
}
