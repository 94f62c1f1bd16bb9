// Seeded assembly into RAM, bounded by a compressed image: the raw image an
// index describes is put together in order — zeros, chunks read from a seed
// (the target disk itself, still untouched: each read hashed again, a chunk
// that changed since it was chunked is fetched instead) and chunks from the
// store — and compressed on the fly into a seekable zstd file (8 MiB frames,
// the format pack writes), so the RAM stage holds a compressed image, never
// the raw one, and never a reference to the disk the write will overwrite.
// Chunks from the store land first in a cache directory (one stored frame
// each, checked against its id): a rerun after an interruption finds them
// there and fetches nothing twice. The raw bytes are hashed in order and
// checked against the signed raw sha256 before anything can be written.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FRAME, writeSeekable } from '../codecs/seekable.ts';
import { bundleError } from '../errors.ts';
import { hashFile } from '../util/hash.ts';
import { checkpoint } from '../util/interrupt.ts';
import { type AssembleReport, fetchAll, type Tally } from './assemble.ts';
import { type ChunkIndex, blobSize, chunkSize, idOf, indexCount } from './caibx.ts';
import { hexOf, keyOf, planAssembly, type Seed } from './plan.ts';
import { chunkId } from './scan.ts';
import { type ChunkSource, decompressChunk } from './store.ts';

export type CompactOptions = {
  index: ChunkIndex;
  // The seekable zstd file to write (in RAM).
  out: string;
  seeds: readonly Seed[];
  source: ChunkSource;
  // Where fetched chunks are kept, as stored, until the caller drops them.
  cache: string;
  // The signed sha256 of the raw image.
  sha256: string;
  level?: number;
  // Called once the chunks to download are known, before any is: BYTES bounds what the cache will grow by.
  beforeFetch?: (bytes: number, chunks: number) => Promise<void>;
  signal?: AbortSignal;
  info?: (line: string) => void;
};

export type CompactReport = AssembleReport & { cached: Tally; image: { file: string; size: number; sha256: string } };

// zstd level for the frames: 3 compresses a 2 GiB image on 2 cores about as
// fast as the disk is read; the README has the size against pack's level 9.
export const COMPACT_LEVEL = 3;

// assembleCompressed: plan, fetch the missing chunks into the cache, then write OUT in index order.
export async function assembleCompressed(o: CompactOptions): Promise<CompactReport> {
  const { index } = o;
  const plan = await planAssembly(index, undefined, o.seeds, o.signal);
  const first = (k: string) => (plan.wanted.get(k) as number[])[0] as number;
  let zeroChunks = 0;
  let zeroBytes = 0;
  for (let i = 0; i < indexCount(index); i++)
    if (plan.zero.has(keyOf(idOf(index, i)))) {
      zeroChunks++;
      zeroBytes += chunkSize(index, i);
    }
  const report: CompactReport = {
    out: o.out,
    size: blobSize(index),
    chunks: indexCount(index),
    inPlace: { chunks: 0, bytes: 0 },
    zero: { chunks: zeroChunks, bytes: zeroBytes },
    seeds: plan.seeds.map((s) => ({ ...s, stale: 0 })),
    missing: { chunks: plan.missing.length, bytes: plan.missingBytes },
    fetched: { chunks: 0, bytes: 0, wire: 0, retried: 0 },
    cached: { chunks: 0, bytes: 0 },
    image: { file: o.out, size: 0, sha256: '' },
  };
  await mkdir(o.cache, { recursive: true, mode: 0o700 });
  const cachePath = (k: string) => join(o.cache, `${hexOf(k)}.cacnk`);
  // A cached chunk is used only when it still decompresses to its id.
  const fromCache = async (k: string): Promise<Buffer | undefined> => {
    const stored = await readFile(cachePath(k)).catch(() => undefined);
    const size = chunkSize(index, first(k));
    const data = stored && decompressChunk(stored, size);
    return data && data.length === size && keyOf(chunkId(data)) === k ? data : undefined;
  };
  const keep = async (k: string, _data: Buffer, stored: Buffer) => {
    const tmp = `${cachePath(k)}.tmp`;
    await writeFile(tmp, stored);
    await rename(tmp, cachePath(k));
  };
  const toFetch: string[] = [];
  for (const k of plan.missing) {
    if (await fromCache(k)) {
      report.cached.chunks++;
      report.cached.bytes += chunkSize(index, first(k));
    } else toFetch.push(k);
  }
  if (toFetch.length) {
    // A stored chunk is one zstd frame: at most its raw size, 1/128 more and a header when it does not compress.
    const raw = toFetch.reduce((n, k) => n + chunkSize(index, first(k)), 0);
    await o.beforeFetch?.(raw + Math.ceil(raw / 128) + 64 * toFetch.length, toFetch.length);
    o.info?.(`fetch ${toFetch.length} chunks from ${o.source.name}`);
  }
  await fetchAll(o, plan, toFetch, keep, report);

  const handles = new Map<number, FileHandle | undefined>();
  const stale = new Set<string>();
  const recounted = new Set<string>();
  const zeros = new Map<number, Buffer>();
  const seedRead = async (seed: number, at: number, size: number): Promise<Buffer | undefined> => {
    if (!handles.has(seed)) handles.set(seed, await open((o.seeds[seed] as Seed).path, 'r').catch(() => undefined));
    const fh = handles.get(seed);
    if (!fh) return undefined;
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, at).catch(() => ({ bytesRead: 0 }));
    return bytesRead === size ? buf : undefined;
  };
  // chunkData: chunk I's raw bytes, each checked against its id.
  const chunkData = async (i: number): Promise<Buffer> => {
    const k = keyOf(idOf(index, i));
    const size = chunkSize(index, i);
    if (plan.zero.has(k)) {
      const z = zeros.get(size) ?? Buffer.alloc(size);
      zeros.set(size, z);
      return z;
    }
    const t = plan.take.get(k);
    if (t && !stale.has(k)) {
      const data = await seedRead(t.seed, t.offset, size);
      if (data && keyOf(chunkId(data)) === k) return data;
      stale.add(k);
      (report.seeds[t.seed] as { stale: number }).stale++;
      o.info?.(`chunk ${hexOf(k)} no longer matches at ${t.offset} of ${(o.seeds[t.seed] as Seed).path}: fetching it instead`);
    }
    const have = await fromCache(k);
    if (have) {
      // A changed seed chunk an earlier run (or a plan) downloaded already.
      if (stale.has(k) && !recounted.has(k)) {
        recounted.add(k);
        report.cached.chunks++;
        report.cached.bytes += size;
      }
      return have;
    }
    await fetchAll(o, plan, [k], keep, report);
    recounted.add(k);
    const got = await fromCache(k);
    if (!got) throw bundleError(`chunk ${hexOf(k)} could not be kept in ${o.cache}: check the free RAM`);
    return got;
  };

  const hash = createHash('sha256');
  const n = indexCount(index);
  let i = 0;
  let carry: Buffer | undefined;
  // nextFrame: the next FRAME raw bytes of the image (the last frame shorter).
  const nextFrame = async (): Promise<Buffer | undefined> => {
    if (i >= n && !carry) return undefined;
    const frame = Buffer.allocUnsafe(FRAME);
    let fill = 0;
    while (fill < FRAME) {
      if (!carry) {
        if (i >= n) break;
        checkpoint(o.signal);
        carry = await chunkData(i++);
        hash.update(carry);
      }
      const take = Math.min(FRAME - fill, carry.length);
      carry.copy(frame, fill, 0, take);
      fill += take;
      carry = take < carry.length ? carry.subarray(take) : undefined;
    }
    return fill ? frame.subarray(0, fill) : undefined;
  };
  try {
    await writeSeekable(nextFrame, o.out, o.level ?? COMPACT_LEVEL);
  } finally {
    for (const h of handles.values()) await h?.close();
  }
  const sum = hash.digest('hex');
  if (sum !== o.sha256) throw bundleError(`the image assembled from chunks has sha256 ${sum} but the manifest says ${o.sha256}: the chunk index does not describe this image; pack the bundle again`);
  report.sha256 = sum;
  const got = await hashFile(o.out);
  report.image = { file: o.out, size: got.size, sha256: got.sha256 };
  return report;
}
