// `casync make` for a blob, in-process: chunk a file, collect its index and,
// with a store directory, write every chunk not already in it. Also checks an
// index made elsewhere (by casync) against the blob it claims to describe.
import { open } from 'node:fs/promises';
import { BLOB_FLAGS, type ChunkIndex, chunkSize, chunkStart, idOf, indexCount } from './caibx.ts';
import { type ChunkSizes, chunker } from './chunker.ts';
import { IdList } from './idlist.ts';
import { scanIds } from './parallel.ts';
import { chunkId, scanChunks } from './scan.ts';
import { chunkWriter } from './store.ts';

export type MadeIndex = { index: ChunkIndex; bytes: number; stored: { chunks: number; bytes: number }; seconds: number };

// makeIndex: the index of PATH with these sizes; chunks go to STORE when given.
export async function makeIndex(path: string, sizes: ChunkSizes, store?: { dir: string; level: number }): Promise<MadeIndex> {
  const t0 = performance.now();
  if (!store) {
    // No store to fill: the chunks' bytes are not needed, every core chunks.
    const got = await scanIds(path, chunker(sizes));
    return { index: { flags: BLOB_FLAGS, sizes, ends: got.ends, ids: got.ids }, bytes: got.bytes, stored: { chunks: 0, bytes: 0 }, seconds: (performance.now() - t0) / 1000 };
  }
  const list = new IdList();
  const stored = { chunks: 0, bytes: 0 };
  const put = store ? chunkWriter(store.dir, store.level, sizes.max) : undefined;
  const bytes = await scanChunks(path, chunker(sizes), (ch) => {
    list.push(ch.start + ch.size, ch.id);
    if (put) {
      const w = put(ch.id.toString('hex'), ch.data);
      if (w) {
        stored.chunks++;
        stored.bytes += w;
      }
    }
  });
  const index: ChunkIndex = { flags: BLOB_FLAGS, sizes, ...list.done() };
  return { index, bytes, stored, seconds: (performance.now() - t0) / 1000 };
}

// indexMismatch: why INDEX does not describe the SIZE bytes at PATH (its total
// size, or the first chunk whose bytes do not hash to its id), or undefined.
export async function indexMismatch(index: ChunkIndex, path: string, size: number): Promise<string | undefined> {
  const n = indexCount(index);
  const total = n ? (index.ends[n - 1] as number) : 0;
  if (total !== size) return `describes ${total} bytes but the image is ${size} bytes`;
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(index.sizes.max);
    for (let i = 0; i < n; i++) {
      const len = chunkSize(index, i);
      const { bytesRead } = await fh.read(buf, 0, len, chunkStart(index, i));
      if (bytesRead !== len || !chunkId(buf.subarray(0, len)).equals(idOf(index, i))) {
        return `names chunk ${i} (bytes ${chunkStart(index, i)}–${chunkStart(index, i) + len}) with an id its bytes in the image do not have`;
      }
    }
  } finally {
    await fh.close();
  }
  return undefined;
}
