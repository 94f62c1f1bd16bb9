// A delta file (reimage-delta/1): what a machine holding an earlier release's
// chunk index (the one it was written from, kept at /var/lib/reimage/last.caibx,
// or any --seed-index) downloads instead of the new index and the chunks its
// seeds lack. casync's store sends each missing chunk as its own zstd frame
// and the index as 40 bytes of mostly random ids per chunk; measured on real
// Debian updates that is 12 % + 2.7 % of the compressed image, against 8.2 % +
// 0.4 % for the same bytes as below (README, "Chunked bundles: numbers").
//
// The payload, one zstd frame (level 19, 128 MiB window) of:
//   "RIDELTA1", then little-endian u64s: the new index's feature flags, its
//   chunk sizes min, avg and max, its number of chunks N, the data's length;
//   N records of two LEB128 varints: the chunk's size, and where its bytes are:
//   0 = the next ones in the data, k > 0 = the old index's chunk j where
//   k − 1 is zigzag(j − (previous j + 1)) (consecutive chunks of the old
//   index cost one byte, which compresses to nearly nothing);
//   the data: the chunks the old index lacks, in the new index's order.
// Decoding rebuilds the new index exactly (the caller checks its bytes against
// the manifest's signed sha256) and a local seed: the data with an index of
// its own, so the assembly takes those chunks as from any seed (each hashed
// against its id). A delta decoded with another old index than its own gives
// an index whose sha256 does not match: refused, never used.
import { createHash } from 'node:crypto';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { type ChunkIndex, chunkSize, idOf, indexCount } from './caibx.ts';

const MAGIC = Buffer.from('RIDELTA1');
const HEAD = 8 + 8 * 6;

// encodeDelta: the delta from OLD to NEW, the bytes of NEW's chunks read by
// CHUNK (its number in NEW); the compressed file and its payload's length.
export function encodeDelta(old: ChunkIndex, next: ChunkIndex, chunk: (i: number) => Buffer): { file: Buffer; raw: number } {
  const at = new Map<string, number>();
  for (let j = indexCount(old) - 1; j >= 0; j--) at.set(idOf(old, j).toString('latin1'), j);
  const n = indexCount(next);
  const records: number[] = [];
  const data: Buffer[] = [];
  let dataLen = 0;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const j = at.get(idOf(next, i).toString('latin1'));
    records.push(chunkSize(next, i));
    if (j === undefined) {
      records.push(0);
      const b = chunk(i);
      data.push(b);
      dataLen += b.length;
      continue;
    }
    const d = j - (prev + 1);
    records.push(1 + (d >= 0 ? 2 * d : -2 * d - 1));
    prev = j;
  }
  const head = Buffer.alloc(HEAD);
  MAGIC.copy(head, 0);
  head.writeBigUInt64LE(next.flags, 8);
  head.writeBigUInt64LE(BigInt(next.sizes.min), 16);
  head.writeBigUInt64LE(BigInt(next.sizes.avg), 24);
  head.writeBigUInt64LE(BigInt(next.sizes.max), 32);
  head.writeBigUInt64LE(BigInt(n), 40);
  head.writeBigUInt64LE(BigInt(dataLen), 48);
  const payload = Buffer.concat([head, varints(records), ...data]);
  const file = zstdCompressSync(payload, {
    params: {
      [constants.ZSTD_c_compressionLevel]: 19,
      [constants.ZSTD_c_windowLog]: 27,
      [constants.ZSTD_c_enableLongDistanceMatching]: 1,
    },
  });
  return { file, raw: payload.length };
}

export type DecodedDelta = { index: ChunkIndex; data: Buffer; dataIndex: ChunkIndex };

// decodeDelta: FILE decompressed (never past RAW bytes) and read against OLD
// (CHUNKS: the number of chunks the new index must have, when known); the new
// index, and the data with its own index (a seed); or the sentence saying
// what is wrong with it.
export function decodeDelta(file: Buffer, raw: number, old: ChunkIndex, chunks?: number): DecodedDelta | string {
  let p: Buffer;
  try {
    p = zstdDecompressSync(file, { maxOutputLength: Math.max(1, raw), params: { [constants.ZSTD_d_windowLogMax]: 27 } });
  } catch (e) {
    return `does not decompress to at most ${raw} bytes (${(e as Error).message})`;
  }
  if (p.length !== raw) return `decompresses to ${p.length} bytes, not the ${raw} the manifest says`;
  if (p.length < HEAD || !p.subarray(0, 8).equals(MAGIC)) return 'is not a reimage-delta/1 file';
  const num = (o: number) => Number(p.readBigUInt64LE(o));
  const sizes = { min: num(16), avg: num(24), max: num(32) };
  const n = num(40);
  const dataLen = num(48);
  if (n > p.length || (chunks !== undefined && n !== chunks)) return `says it has ${n} chunks, not the ${chunks ?? `at most ${p.length}`} its index has`;
  let pos = HEAD;
  const read = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= p.length || mul > 2 ** 49) throw new Error('a record runs past the end');
      const b = p[pos++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  const ends = new Float64Array(n);
  const ids = Buffer.alloc(32 * n);
  const fresh: { i: number; size: number }[] = [];
  let end = 0;
  let prev = -1;
  try {
    for (let i = 0; i < n; i++) {
      const size = read();
      const ref = read();
      if (size < 1 || size > sizes.max) return `has chunk ${i} of ${size} bytes (the maximum is ${sizes.max})`;
      end += size;
      ends[i] = end;
      if (ref === 0) {
        fresh.push({ i, size });
        continue;
      }
      const z = ref - 1;
      const j = prev + 1 + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
      if (j < 0 || j >= indexCount(old)) return `names chunk ${j} of the old index, which has ${indexCount(old)}: it was made against another index`;
      if (chunkSize(old, j) !== size) return `gives chunk ${i} ${size} bytes where the old index's chunk ${j} has ${chunkSize(old, j)}: it was made against another index`;
      idOf(old, j).copy(ids, 32 * i);
      prev = j;
    }
  } catch (e) {
    return (e as Error).message.replace(/^/, 'is truncated: ');
  }
  if (p.length - pos !== dataLen) return `holds ${p.length - pos} bytes of chunk data, not the ${dataLen} its header says`;
  const data = p.subarray(pos);
  const dataEnds = new Float64Array(fresh.length);
  const dataIds = Buffer.alloc(32 * fresh.length);
  let off = 0;
  for (const [k, f] of fresh.entries()) {
    if (off + f.size > data.length) return `holds ${data.length} bytes of chunk data, fewer than its chunks need`;
    const id = createHash('sha512-256')
      .update(data.subarray(off, off + f.size))
      .digest();
    id.copy(ids, 32 * f.i);
    id.copy(dataIds, 32 * k);
    off += f.size;
    dataEnds[k] = off;
  }
  if (off !== data.length) return `holds ${data.length - off} bytes of chunk data no chunk uses`;
  const flags = p.readBigUInt64LE(8);
  return { index: { flags, sizes, ends, ids }, data, dataIndex: { flags, sizes, ends: dataEnds, ids: dataIds } };
}

// varints: VALUES as LEB128 varints.
function varints(values: readonly number[]): Buffer {
  const out = Buffer.alloc(values.length * 8);
  let o = 0;
  for (let v of values) {
    while (v >= 0x80) {
      out[o++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    out[o++] = v;
  }
  return out.subarray(0, o);
}
