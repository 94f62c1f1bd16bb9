// The byte checker of the write path: raw image bytes, fed in order (one
// whole image, or one frame of it in a worker thread), are checked against
// extents that each carry the checksum of their bytes: the block map's
// mapped ranges, or one extent spanning the whole image with the manifest's
// raw sha256 when the bundle has no block map. Bytes no extent covers must be
// zero: that is what a block map promises about the blocks it leaves out.
//
// Self-contained on purpose (no imports; its dependencies are parameters): its
// source text is also evaluated inside worker threads (see image/frames.ts).
import type { Hash } from 'node:crypto';
import type { Extent } from '../bmap/format.ts';

export type Checker = {
  // Bytes [at, at + buf.length), in order; returns the covered [start, end) pieces.
  feed: (buf: Buffer, at: number) => [number, number][];
  // All extents must have been fed completely.
  done: () => void;
};

export function makeChecker(list: readonly Extent[], hashName: string, newHash: (name: string) => Hash, checkGaps: boolean): Checker {
  let i = 0;
  let h: Hash | undefined;
  const zeros = Buffer.alloc(1 << 20);
  const isZero = (buf: Buffer, a: number, b: number) => {
    for (let p = a; p < b; p += zeros.length) {
      const n = Math.min(zeros.length, b - p);
      if (!buf.subarray(p, p + n).equals(zeros.subarray(0, n))) return false;
    }
    return true;
  };
  return {
    feed(buf, at) {
      const out: [number, number][] = [];
      const end = at + buf.length;
      let pos = at;
      while (pos < end) {
        const e = list[i];
        if (!e || pos < e.start) {
          const stop = Math.min(end, e ? e.start : end);
          if (checkGaps && !isZero(buf, pos - at, stop - at)) {
            throw new Error(`bytes ${pos} to ${stop} of the image are not zero, yet the block map leaves them out`);
          }
          pos = stop;
          continue;
        }
        const stop = Math.min(end, e.end);
        h ??= newHash(hashName);
        h.update(buf.subarray(pos - at, stop - at));
        const last = out[out.length - 1];
        if (last && last[1] === pos) last[1] = stop;
        else out.push([pos, stop]);
        pos = stop;
        if (pos === e.end) {
          const got = h.digest('hex');
          h = undefined;
          if (got !== e.sum)
            throw new Error(`bytes ${e.start} to ${e.end} of the image have ${hashName} ${got}, but ${e.start === 0 && i === list.length - 1 ? 'the manifest' : 'the block map'} says ${e.sum}`);
          i++;
        }
      }
      return out;
    },
    done() {
      const e = list[i];
      if (e) throw new Error(`the image ended before bytes ${e.start} to ${e.end} were complete`);
    },
  };
}
