// Where each chunk of a target index comes from, decided before anything is
// fetched: already in place in the output (a rerun after an interruption),
// all zeros, found in a seed (a file or block device chunked on the fly with
// the index's own chunker, or a file whose index is known), or the store.
// Seeds only propose: every chunk taken from one is hashed again when read.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { type ChunkIndex, chunkSize, chunkStart, idOf, indexCount, parseIndex } from './caibx.ts';
import { checkpoint } from '../util/interrupt.ts';
import { chunker } from './chunker.ts';
import { forEachId } from './parallel.ts';
import { chunkId } from './scan.ts';

// An index seed's sha256 (of its .caibx bytes) says which release it is: a bundle's delta file made against it applies (chunks/delta.ts).
export type Seed = { kind: 'file'; path: string } | { kind: 'index'; path: string; index: ChunkIndex; sha256?: string };
export type Take = { seed: number; offset: number };

// indexSeed: the .caibx BYTES as a seed over the file PATH (with their sha256), or what is wrong with them.
export function indexSeed(bytes: Buffer, path: string): Seed | string {
  const index = parseIndex(bytes);
  return typeof index === 'string' ? index : { kind: 'index', path, index, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export type SeedTally = { name: string; chunks: number; bytes: number; scanned: number; seconds: number; error?: string };

export type Plan = {
  // Per unique id (latin1 key of its 32 bytes): the chunk numbers that carry it.
  wanted: Map<string, number[]>;
  // Chunk numbers whose bytes are already right in the output.
  inPlace: Uint8Array;
  zero: Set<string>;
  take: Map<string, Take>;
  seeds: SeedTally[];
  // Unique ids no seed holds, and their raw bytes.
  missing: string[];
  missingBytes: number;
};

export const keyOf = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, 32).toString('latin1');
export const hexOf = (key: string): string => Buffer.from(key, 'latin1').toString('hex');

// planAssembly: the plan for INDEX given what OUT already holds and SEEDS.
// A seed that cannot be read is noted in its tally and contributes nothing.
export async function planAssembly(index: ChunkIndex, out: string | undefined, seeds: readonly Seed[], signal?: AbortSignal): Promise<Plan> {
  const n = indexCount(index);
  const wanted = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const k = keyOf(idOf(index, i));
    const at = wanted.get(k);
    if (at) at.push(i);
    else wanted.set(k, [i]);
  }
  const inPlace = new Uint8Array(n);
  if (out) await checkInPlace(index, out, inPlace, signal);
  // Runs of zeros cut at the first possible length or at max; the last chunk may be shorter.
  const zero = new Set<string>();
  for (const len of new Set([Math.max(index.sizes.min, 48), index.sizes.max, n ? chunkSize(index, n - 1) : 0])) {
    if (len > 0) zero.add(keyOf(chunkId(new Uint8Array(len))));
  }
  const take = new Map<string, Take>();
  const open = (k: string) => wanted.has(k) && !zero.has(k) && !take.has(k) && !(wanted.get(k) as number[]).every((i) => inPlace[i]);
  const tallies: SeedTally[] = [];
  for (const [s, seed] of seeds.entries()) {
    const t: SeedTally = { name: seed.path, chunks: 0, bytes: 0, scanned: 0, seconds: 0 };
    const t0 = performance.now();
    const found = (k: string, offset: number, size: number) => {
      if (!open(k)) return;
      take.set(k, { seed: s, offset });
      t.chunks++;
      t.bytes += size;
    };
    try {
      if (seed.kind === 'file') {
        // Streamed: a whole disk's ids are never held at once.
        let start = 0;
        const got = await forEachId(
          seed.path,
          chunker(index.sizes),
          (end, id) => {
            found(keyOf(id), start, end - start);
            start = end;
          },
          signal,
        );
        t.scanned = got.bytes;
      } else for (let i = 0; i < indexCount(seed.index); i++) found(keyOf(idOf(seed.index, i)), chunkStart(seed.index, i), chunkSize(seed.index, i));
    } catch (e) {
      if (signal?.aborted) throw e;
      t.error = (e as Error).message;
    }
    t.seconds = (performance.now() - t0) / 1000;
    tallies.push(t);
  }
  const missing: string[] = [];
  let missingBytes = 0;
  for (const [k, at] of wanted) {
    if (!open(k)) continue;
    missing.push(k);
    missingBytes += chunkSize(index, at[0] as number);
  }
  return { wanted, inPlace, zero, take, seeds: tallies, missing, missingBytes };
}

// checkInPlace: mark the chunks OUT already holds at their place (it must be
// a regular file of the image's size: what an interrupted assembly leaves).
async function checkInPlace(index: ChunkIndex, out: string, inPlace: Uint8Array, signal?: AbortSignal): Promise<void> {
  const n = indexCount(index);
  const fh = await open(out, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size !== (n ? (index.ends[n - 1] as number) : 0)) return;
    const buf = Buffer.allocUnsafe(Math.max(8 << 20, index.sizes.max));
    let i = 0;
    while (i < n) {
      checkpoint(signal);
      // Read as many whole chunks as fit, then hash each.
      const from = chunkStart(index, i);
      let j = i;
      while (j < n && (index.ends[j] as number) - from <= buf.length) j++;
      const { bytesRead } = await fh.read(buf, 0, (index.ends[j - 1] as number) - from, from);
      for (; i < j; i++) {
        const a = chunkStart(index, i) - from;
        const b = (index.ends[i] as number) - from;
        if (b <= bytesRead && chunkId(buf.subarray(a, b)).equals(idOf(index, i))) inPlace[i] = 1;
      }
    }
  } finally {
    await fh.close();
  }
}
