// scanImage: one pass over a raw image (pack): its size and sha256, and its
// block map: every 4 KiB block that is not all zeros is mapped, ranges never
// cross a multiple of FRAME (so each zstd frame can be checked on its own, in
// parallel), and each range carries the sha256 of its bytes. The last block,
// when the image does not end on a block boundary, is always mapped.
// With an imported .bmap (bmaptool create), its mapping is used instead, after
// checking it against the image: its checksums must match, and every block it
// leaves out must be zero (reimage's promise about unmapped blocks).
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { bundleError } from '../errors.ts';
import { FRAME } from '../codecs/seekable.ts';
import type { BlockMap, MapRange } from './format.ts';

export const BLOCK_SIZE = 4096;

export async function scanImage(image: string, imported?: { map: BlockMap; origin: string }, tick?: (n: number) => void): Promise<{ sha256: string; size: number; map: BlockMap }> {
  const fh = await open(image, 'r');
  const whole = createHash('sha256');
  const ranges: MapRange[] = [];
  let cur: { first: number; last: number; h: Hash } | undefined;
  const close = () => {
    if (cur) ranges.push({ first: cur.first, last: cur.last, sum: cur.h.digest('hex') });
    cur = undefined;
  };
  const bs = BLOCK_SIZE;
  const zeros = Buffer.alloc(FRAME);
  // The imported map: which imported range block b falls in, walked in order.
  const src = imported?.map;
  if (src && src.blockSize % bs !== 0) throw bundleError(`block map ${imported.origin} has block size ${src.blockSize}, not a multiple of ${bs}: recreate it with bmaptool create`);
  let ri = 0;
  let rh: Hash | undefined;
  try {
    const size = (await fh.stat()).size;
    if (src && src.imageSize !== size) throw bundleError(`block map ${imported.origin} is for a ${src.imageSize}-byte image, but ${image} is ${size} bytes: give the .bmap made for this image`);
    const buf = Buffer.allocUnsafe(FRAME);
    for (let at = 0; at < size; at += FRAME) {
      const n = Math.min(FRAME, size - at);
      const { bytesRead } = await fh.read(buf, 0, n, at);
      if (bytesRead !== n) throw new Error(`${image} shrank while it was read`);
      const chunk = buf.subarray(0, n);
      whole.update(chunk);
      tick?.(n);
      const allZero = chunk.equals(zeros.subarray(0, n));
      close(); // ranges never cross a frame boundary
      for (let p = 0; p < n; p += bs) {
        const q = Math.min(n, p + bs);
        const block = (at + p) / bs;
        const zero = allZero || (q - p === bs && chunk.subarray(p, q).equals(zeros.subarray(0, bs)));
        let mapped = !zero;
        if (src) {
          const byte = at + p;
          while (ri < src.ranges.length && (src.ranges[ri]!.last + 1) * src.blockSize <= byte) ri++;
          const r = src.ranges[ri];
          mapped = !!r && r.first * src.blockSize <= byte;
          if (!mapped && !zero)
            throw bundleError(
              `block map ${imported.origin} leaves bytes ${byte} to ${at + q} out, but the image has data there: recreate it with bmaptool create, or pack without --bmap (reimage finds the zero blocks itself)`,
            );
          if (mapped) {
            rh ??= createHash(src.checksum);
            rh.update(chunk.subarray(p, q));
            if (at + q >= Math.min((r!.last + 1) * src.blockSize, size)) {
              const got = rh.digest('hex');
              rh = undefined;
              if (got !== r!.sum)
                throw bundleError(
                  `block map ${imported.origin} does not describe ${image}: blocks ${r!.first}-${r!.last} have ${src.checksum} ${got}, not ${r!.sum}; give the .bmap made for this image`,
                );
            }
          }
        }
        if (!mapped) {
          close();
          continue;
        }
        if (cur && cur.last === block - 1) cur.last = block;
        else {
          close();
          cur = { first: block, last: block, h: createHash('sha256') };
        }
        cur.h.update(chunk.subarray(p, q));
      }
    }
    close();
    return { sha256: whole.digest('hex'), size, map: { imageSize: size, blockSize: bs, checksum: 'sha256', ranges } };
  } finally {
    await fh.close();
  }
}
