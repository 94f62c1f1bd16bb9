// The write path's core: raw bytes from a decoder are cut into large aligned
// blocks, counted and hashed, and handed to a sink while the next block fills
// (two buffers, one write in flight). The core, not the sink, checks the
// bytes: a stream longer than the manifest's raw size is cut off at that size,
// and the count and sha256 are asserted at the end.
import { createHash } from 'node:crypto';
import { ReimageError } from '../errors.ts';
import { alignedBuffer } from '../util/aligned.ts';
import type { Decoded } from '../codecs/types.ts';
import type { Manifest } from '../bundle/manifest.ts';

export const BLOCK = 4 << 20;

export type Sink = (block: Buffer, offset: number) => Promise<void>;

// The decoded bytes differ from what the manifest promises.
export class RawMismatch extends ReimageError {
  constructor(message: string) {
    super('bundle', message);
  }
}

export async function decodeVerified(d: Decoded, m: Manifest, sink: Sink, onBytes?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
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
    hash.update(block);
    const at = offset;
    offset += fill;
    inFlight = sink(block, at).catch((e: unknown) => {
      sinkErrors.add(e);
      throw e;
    });
    inFlight.catch(() => {});
    onBytes?.(fill);
    cur ^= 1;
    fill = 0;
  };
  try {
    for await (const chunk of d.stream as AsyncIterable<Buffer>) {
      let pos = 0;
      while (pos < chunk.length) {
        const room = m.raw.size - (offset + fill);
        if (room === 0) {
          throw new RawMismatch(`the image decompresses to more than the ${m.raw.size} bytes the manifest states: it was cut off there; rebuild the bundle with reimage pack`);
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
    throw new RawMismatch(`the image does not decompress (${(e as Error).message}): it is corrupt; rebuild the bundle with reimage pack`);
  }
  const sha256 = hash.digest('hex');
  if (offset !== m.raw.size) {
    throw new RawMismatch(`the image decompresses to ${offset} bytes but the manifest says ${m.raw.size}: rebuild the bundle with reimage pack`);
  }
  if (sha256 !== m.raw.sha256) {
    throw new RawMismatch(`the decompressed image has sha256 ${sha256} but the manifest says ${m.raw.sha256}: rebuild the bundle with reimage pack`);
  }
  return { sha256, size: offset };
}
