// casync's content-defined chunker, byte for byte: a chunk starts where the
// previous one ended; its first min−48 bytes are not looked at; then a buzhash
// over the last 48 bytes is tested after every byte (h mod d = d−1 cuts), and
// a chunk never grows past max. min = avg = max is casync's fixed-size mode.
// Because a cut depends only on the bytes of its own chunk, a file can be
// chunked in any slices with the same result.
import { SIZE_LIMIT_MAX, SIZE_LIMIT_MIN, TABLE, WINDOW, discriminator, rol32 } from './buzhash.ts';

export type ChunkSizes = { min: number; avg: number; max: number };

// casync's defaults (16/64/256 KiB).
export const CASYNC_SIZES: ChunkSizes = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

// What `pack --chunks` uses: content-defined chunks 16× smaller than casync's
// default. File systems move files' blocks between versions; small chunks
// resynchronise inside each moved extent, where 64 KiB ones straddle the
// change or the move. Measured (README, "Chunked bundles: numbers") on a
// 1 GiB ext4 pair: a v1 machine fetches 0.5 % of the compressed v2 image
// (casync's defaults: far more; fixed 4 KiB: 1.0 %), with an index of 0.69 %
// of the raw image. casync reads and writes it with --chunk-size=1024:4096:16384.
export const DEFAULT_SIZES: ChunkSizes = { min: 1024, avg: 4096, max: 16 * 1024 };

// T: the table as int32; T16: each value rotated by the window size (48 mod
// 32 = 16), what the byte leaving the window takes out of the hash.
export type Chunker = ChunkSizes & { d: number; fixed: boolean; inv: number; shift: number; limit: number; onesCut: boolean; T: Int32Array; T16: Int32Array };

// sizesProblem: why casync would refuse these sizes, or undefined.
export function sizesProblem(s: ChunkSizes): string | undefined {
  const ok = (n: number) => Number.isSafeInteger(n) && n >= SIZE_LIMIT_MIN && n <= SIZE_LIMIT_MAX;
  if (!ok(s.min) || !ok(s.avg) || !ok(s.max)) return `every size must be a whole number from ${SIZE_LIMIT_MIN} to ${SIZE_LIMIT_MAX}`;
  if (!(s.min <= s.avg && s.avg <= s.max)) return 'min ≤ avg ≤ max is required';
  return undefined;
}

// chunker: the parameters the scan needs, from checked sizes.
export function chunker(s: ChunkSizes): Chunker {
  const d = discriminator(s.min, s.avg, s.max);
  let shift = 0;
  let odd = d;
  while ((odd & 1) === 0) {
    odd >>>= 1;
    shift++;
  }
  let inv = odd; // Newton's iteration doubles the correct low bits each step.
  for (let i = 0; i < 5; i++) inv = Math.imul(inv, 2 - Math.imul(odd, inv));
  // Compared as signed after flipping the top bit: unsigned order, int32 speed.
  const limit = (Math.floor(0xffffffff / d) ^ 0x80000000) | 0;
  // h = 2^32−1 is the one value whose h+1 wraps to 0: it cuts only when d divides 2^32.
  const fixed = s.min === s.avg && s.avg === s.max;
  return { ...s, d, fixed, inv: inv | 0, shift, limit, onesCut: 0xffffffff % d === d - 1, T, T16 };
}

const T = Int32Array.from(TABLE);
const T16 = Int32Array.from(TABLE, (v) => rol32(v, WINDOW) | 0);

// cuts: does hash H (as int32) satisfy h mod d = d−1?
export function cuts(h: number, c: Chunker): boolean {
  let q = Math.imul(h + 1, c.inv);
  if (c.shift) q = (q >>> c.shift) | (q << (32 - c.shift));
  return ((q ^ 0x80000000) | 0) <= c.limit && (h !== -1 || c.onesCut);
}

// cutLength: the length of the chunk that starts at START in BUF, looking no
// further than END; -1 when END comes first (more data needed, or at the end
// of the input the rest is the last chunk). Self-contained (the window size
// is the literal 48, the cut test `cuts` inlined, the tables in C): the
// parallel scan evaluates its source text in worker threads, so both paths
// run this one function.
export function cutLength(buf: Uint8Array, start: number, end: number, c: Chunker): number {
  const avail = end - start;
  if (c.fixed) return avail >= c.max ? c.max : -1;
  // With min < 48 casync fills its window before the first test.
  const first = c.min > 48 ? c.min : 48;
  if (avail < first) return -1;
  const T = c.T;
  const T16 = c.T16;
  const inv = c.inv;
  const shift = c.shift;
  const back = 32 - shift;
  const limit = c.limit;
  const ones = c.onesCut;
  let h = 0;
  for (let i = start + first - 48; i < start + first; i++) h = ((h << 1) | (h >>> 31)) ^ (T[buf[i] as number] as number);
  let q = Math.imul(h + 1, inv);
  if (shift) q = (q >>> shift) | (q << back);
  if (first >= c.max || (((q ^ 0x80000000) | 0) <= limit && (h !== -1 || ones))) return first;
  const stop = end < start + c.max ? end : start + c.max;
  // The cut test is h mod d = d−1, i.e. d divides h+1: with d = odd·2^shift,
  // (h+1)·odd⁻¹ rotated right by shift is ≤ (2^32−1)/d exactly then.
  for (let p = start + first; p < stop; p++) {
    h = ((h << 1) | (h >>> 31)) ^ (T16[buf[p - 48] as number] as number) ^ (T[buf[p] as number] as number);
    q = Math.imul(h + 1, inv);
    if (shift) q = (q >>> shift) | (q << back);
    if (((q ^ 0x80000000) | 0) <= limit && (h !== -1 || ones)) return p - start + 1;
  }
  return stop === start + c.max ? c.max : -1;
}
