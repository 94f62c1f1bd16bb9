// casync's blob index (.caibx), read and written. Little-endian, 64-bit fields:
//   INDEX  size=48, type, feature flags, chunk size min, avg, max
//   TABLE  size=2^64−1 (written incrementally), type
//          one record per chunk: end offset in the blob, 32-byte chunk id
//   TAIL   0, 0, offset of TABLE from the index start (=48), TABLE size, marker
// The tail has a record's size (40 bytes), so the index is 48 + 16 + 40·(n+1) bytes.
import { type ChunkSizes, sizesProblem } from './chunker.ts';

const INDEX_TYPE = 0x96824d9c7b129ff9n;
const TABLE_TYPE = 0xe75b9e112f17417dn;
const TAIL_MARKER = 0x4b4f050e5549ecd1n;
// What `casync make` records for a blob: SHA512_256 | EXCLUDE_FILE | EXCLUDE_NODUMP.
export const BLOB_FLAGS = 0xb000000000000000n;
const SHA512_256 = 0x2000000000000000n;
const HEAD = 48 + 16;
const RECORD = 40;

export type ChunkIndex = {
  flags: bigint;
  sizes: ChunkSizes;
  // ends[i]: where chunk i ends in the blob; chunk i starts at ends[i-1] (or 0).
  ends: Float64Array;
  // ids: chunk i's 32-byte id at ids[32·i].
  ids: Buffer;
};

// indexCount, chunkStart, chunkSize, idOf, idHex: reading an index's chunks.
export const indexCount = (x: ChunkIndex): number => x.ends.length;
export const chunkStart = (x: ChunkIndex, i: number): number => (i === 0 ? 0 : (x.ends[i - 1] as number));
export const chunkSize = (x: ChunkIndex, i: number): number => (x.ends[i] as number) - chunkStart(x, i);
export const idOf = (x: ChunkIndex, i: number): Buffer => x.ids.subarray(32 * i, 32 * i + 32);
export const idHex = (x: ChunkIndex, i: number): string => x.ids.toString('hex', 32 * i, 32 * i + 32);
// countOfSize: how many chunks an index of BYTES bytes lists (the header, one record each, the tail).
export const countOfSize = (bytes: number): number => (bytes - HEAD) / RECORD - 1;
// blobSize: the size of the blob the index describes.
export const blobSize = (x: ChunkIndex): number => (x.ends.length ? (x.ends[x.ends.length - 1] as number) : 0);

// formatIndex: the .caibx bytes of an index.
export function formatIndex(x: ChunkIndex): Buffer {
  const n = indexCount(x);
  const b = Buffer.alloc(HEAD + RECORD * (n + 1));
  b.writeBigUInt64LE(48n, 0);
  b.writeBigUInt64LE(INDEX_TYPE, 8);
  b.writeBigUInt64LE(x.flags, 16);
  b.writeBigUInt64LE(BigInt(x.sizes.min), 24);
  b.writeBigUInt64LE(BigInt(x.sizes.avg), 32);
  b.writeBigUInt64LE(BigInt(x.sizes.max), 40);
  b.writeBigUInt64LE(0xffffffffffffffffn, 48);
  b.writeBigUInt64LE(TABLE_TYPE, 56);
  for (let i = 0; i < n; i++) {
    const at = HEAD + RECORD * i;
    b.writeBigUInt64LE(BigInt(x.ends[i] as number), at);
    x.ids.copy(b, at + 8, 32 * i, 32 * i + 32);
  }
  const tail = HEAD + RECORD * n;
  b.writeBigUInt64LE(48n, tail + 16);
  b.writeBigUInt64LE(BigInt(16 + RECORD * (n + 1)), tail + 24);
  b.writeBigUInt64LE(TAIL_MARKER, tail + 32);
  return b;
}

// parseIndex: an index from .caibx bytes, or the sentence saying what is wrong
// with them (the caller names the file and the fix).
export function parseIndex(b: Buffer): ChunkIndex | string {
  if (b.length < HEAD + RECORD) return `is ${b.length} bytes, too short for a casync index (at least ${HEAD + RECORD})`;
  if (b.readBigUInt64LE(0) !== 48n || b.readBigUInt64LE(8) !== INDEX_TYPE) return 'does not start with a casync index header (not a .caibx file)';
  if (b.readBigUInt64LE(56) !== TABLE_TYPE) return 'has no chunk table after its header';
  if ((b.length - HEAD) % RECORD !== 0) return `is ${b.length} bytes, not a whole number of ${RECORD}-byte table records: it is truncated`;
  const n = (b.length - HEAD) / RECORD - 1;
  const tail = HEAD + RECORD * n;
  const tailOk =
    b.readBigUInt64LE(tail) === 0n &&
    b.readBigUInt64LE(tail + 8) === 0n &&
    b.readBigUInt64LE(tail + 16) === 48n &&
    b.readBigUInt64LE(tail + 24) === BigInt(16 + RECORD * (n + 1)) &&
    b.readBigUInt64LE(tail + 32) === TAIL_MARKER;
  if (!tailOk) return 'does not end with the table tail marker: it is truncated or altered';
  const flags = b.readBigUInt64LE(16);
  if ((flags & SHA512_256) === 0n) return 'names its chunks by SHA-256 (casync --digest=sha256); only SHA512/256 ids are supported: make it again with the default digest';
  const num = (at: number) => Number(b.readBigUInt64LE(at));
  const sizes = { min: num(24), avg: num(32), max: num(40) };
  const bad = sizesProblem(sizes);
  if (bad) return `has chunk sizes ${sizes.min}/${sizes.avg}/${sizes.max} that casync refuses (${bad})`;
  const ends = new Float64Array(n);
  const ids = Buffer.alloc(32 * n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const at = HEAD + RECORD * i;
    const end = b.readBigUInt64LE(at);
    if (end > BigInt(Number.MAX_SAFE_INTEGER) || Number(end) <= prev) return `has chunk ${i} ending at ${end}, not after the previous chunk's end ${prev}: it is corrupt`;
    if (Number(end) - prev > sizes.max) return `has chunk ${i} of ${Number(end) - prev} bytes, more than its maximum chunk size ${sizes.max}: it is corrupt`;
    prev = Number(end);
    ends[i] = prev;
    b.copy(ids, 32 * i, at + 8, at + 40);
  }
  return { flags, sizes, ends, ids };
}
