// Chunking a seed on every core, with exactly the cuts of one pass from the
// start. The file is split into regions; a worker thread chunks each region
// as if a chunk started at its first byte (cutLength's own source runs in the
// worker) and hashes every chunk. Those cuts are right only once the true
// chain of cuts — the one from byte 0 — lands on one of them: a cut depends
// only on the bytes since the previous cut, so two chains that share one cut
// share every later one. This thread walks the true chain: it takes a
// region's cuts from the first shared cut on, and cuts (and hashes) the bytes
// itself until one is shared. On real data that is the first or second chunk
// past a region's start; in a run of zeros (no window ever cuts) the chains
// may never meet, and a run of zeros is then cut here at memcmp speed.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkpoint } from '../util/interrupt.ts';
import { type Chunker, cutLength } from './chunker.ts';
import { scanChunks } from './scan.ts';

// regions: how many the file was cut into (1: one pass here); stitched: chunks cut here while the chains had not met.
export type ScannedIds = { ends: Float64Array; ids: Buffer; bytes: number; regions: number; stitched: number };
type Region = { at: number; end: number };
type Cuts = { at: number; ends: Float64Array; ids: Uint8Array };

// Regions below this size are not worth a thread (nor files below twice it).
export const MIN_REGION = 32 << 20;
const MAX_WORKERS = 4;

// The worker's body, evaluated from its source text: it uses only its
// parameter and what `require` gives a worker. It answers each region with
// the chain of cuts from the region's start up to the first cut at or past
// its end (or the end of the file), and the ids of those chunks.
function regionWorker(cut: typeof cutLength): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const fs = require('node:fs') as typeof import('node:fs');
  const crypto = require('node:crypto') as typeof import('node:crypto');
  const { path, size, c } = workerData as { path: string; size: number; c: Chunker };
  const fd = fs.openSync(path, 'r');
  const buf = Buffer.allocUnsafe((8 << 20) + c.max);
  // A chunk whose first max bytes are zeros has the length and id of the zero chunk (memcmp, no hashing).
  const zeros = Buffer.alloc(c.max);
  const zeroLen = cut(zeros, 0, c.max, c);
  const zeroId = zeroLen > 0 ? crypto.createHash('sha512-256').update(zeros.subarray(0, zeroLen)).digest() : undefined;
  parentPort!.on('message', (r: Region) => {
    try {
      let ends = new Float64Array(4096);
      let ids = new Uint8Array(32 * 4096);
      let n = 0;
      let at = r.at; // where buf[0] is in the file
      let have = 0;
      let start = 0;
      let pos = r.at;
      while (pos < r.end && pos < size) {
        if (have - start < c.max && at + have < size) {
          buf.copy(buf, 0, start, have);
          at += start;
          have -= start;
          start = 0;
          while (have < buf.length && at + have < size) {
            const got = fs.readSync(fd, buf, have, Math.min(buf.length - have, size - at - have), at + have);
            if (got === 0) throw new Error(`${path} ends at ${at + have} bytes, before its size of ${size}`);
            have += got;
          }
        }
        const zero = zeroId !== undefined && start + c.max <= have && zeros.equals(buf.subarray(start, start + c.max));
        let len = zero ? zeroLen : cut(buf, start, have, c);
        if (len < 0) len = have - start; // only at the end of the file
        if (n === ends.length) {
          const e = new Float64Array(n * 2);
          e.set(ends);
          ends = e;
          const d = new Uint8Array(64 * n);
          d.set(ids);
          ids = d;
        }
        ids.set(
          zero && zeroId
            ? zeroId
            : crypto
                .createHash('sha512-256')
                .update(buf.subarray(start, start + len))
                .digest(),
          32 * n,
        );
        start += len;
        pos += len;
        ends[n++] = pos;
      }
      const out = { at: r.at, ends: ends.slice(0, n), ids: ids.slice(0, 32 * n) };
      parentPort!.postMessage(out, [out.ends.buffer, out.ids.buffer]);
    } catch (e) {
      parentPort!.postMessage({ error: (e as Error).message });
    }
  });
}

const WORKER_SOURCE = `const cutLength = ${cutLength.toString()};\n(${regionWorker.toString()})(cutLength);\n`;

export type ParallelOptions = { workers?: number; region?: number };

// scanIds: every chunk end and id of PATH, the same as scanChunks gives, on
// up to WORKERS threads (default: the cores, at most 4) in regions of at most
// REGION bytes (default 256 MiB; tests make them small). A file too small to
// share, or whose size cannot be known, is scanned here in one pass.
export async function scanIds(path: string, c: Chunker, signal?: AbortSignal, o: ParallelOptions = {}): Promise<ScannedIds> {
  const workers = o.workers ?? Math.min(MAX_WORKERS, availableParallelism());
  const size = sizeOf(path);
  if (c.fixed || workers < 2 || size === undefined || size < 2 * (o.region ?? MIN_REGION)) return sequential(path, c, signal);
  const count = Math.max(workers, Math.ceil(size / (o.region ?? 256 << 20)));
  const step = Math.ceil(size / count);
  const regions: Region[] = Array.from({ length: count }, (_, i) => ({ at: i * step, end: Math.min(size, (i + 1) * step) })).filter((r) => r.at < size);
  const cuts = await runRegions(path, size, c, regions, workers, signal);
  return stitch(path, size, c, cuts, signal);
}

// sequential: the one-pass scan, as ends and ids.
async function sequential(path: string, c: Chunker, signal?: AbortSignal): Promise<ScannedIds> {
  const ends: number[] = [];
  const ids: Buffer[] = [];
  const bytes = await scanChunks(
    path,
    c,
    (ch) => {
      ends.push(ch.start + ch.size);
      ids.push(ch.id);
    },
    signal,
  );
  return { ends: Float64Array.from(ends), ids: Buffer.concat(ids), bytes, regions: 1, stitched: 0 };
}

// sizeOf: a regular file's size, or a block device's from sysfs; undefined otherwise.
function sizeOf(path: string): number | undefined {
  try {
    const st = statSync(path);
    if (st.isFile()) return st.size;
    if (!st.isBlockDevice()) return undefined;
    // Linux's dev_t: major in bits 8–19, minor in bits 0–7 and 20–31.
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | (Math.floor(st.rdev / 4096) & 0xfff00);
    return Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512;
  } catch {
    return undefined;
  }
}

// runRegions: each region's cuts, WORKERS threads at a time.
async function runRegions(path: string, size: number, c: Chunker, regions: Region[], workers: number, signal?: AbortSignal): Promise<Cuts[]> {
  const pool = Array.from({ length: Math.min(workers, regions.length) }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { path, size, c } }));
  const out: Cuts[] = new Array(regions.length);
  try {
    let next = 0;
    await Promise.all(
      pool.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const give = () => {
              if (signal?.aborted) return reject(signal.reason);
              if (next >= regions.length) return resolve();
              w.postMessage(regions[next++]);
            };
            w.on('message', (m: Cuts | { error: string }) => {
              if ('error' in m) return reject(new Error(m.error));
              out[regions.findIndex((r) => r.at === m.at)] = m;
              give();
            });
            w.on('error', reject);
            give();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return out;
}

// stitch: the true chain of cuts from byte 0, taking each region's cuts from
// the first one it shares with the chain, cutting here until then.
async function stitch(path: string, size: number, c: Chunker, regions: Cuts[], signal?: AbortSignal): Promise<ScannedIds> {
  const ends: Float64Array[] = [];
  const ids: Uint8Array[] = [];
  let stitched = 0;
  const fh = await open(path, 'r');
  try {
    const zeros = Buffer.alloc(c.max);
    const zeroLen = cutLength(zeros, 0, c.max, c);
    const zeroId = zeroLen > 0 ? createHash('sha512-256').update(zeros.subarray(0, zeroLen)).digest() : undefined;
    const buf = Buffer.allocUnsafe((4 << 20) + c.max);
    let bufAt = 0;
    let bufLen = 0;
    let mine: number[] = [];
    let mineIds: Buffer[] = [];
    const flush = () => {
      if (!mine.length) return;
      ends.push(Float64Array.from(mine));
      ids.push(Buffer.concat(mineIds));
      mine = [];
      mineIds = [];
    };
    let e = 0; // the last cut of the true chain
    let r = 0;
    while (e < size) {
      checkpoint(signal);
      while (r + 1 < regions.length && (regions[r + 1] as Cuts).at <= e) r++;
      const reg = regions[r] as Cuts;
      const k = reg.at === e ? 0 : indexOf(reg.ends, e) + 1;
      if (k > 0 || reg.at === e) {
        flush();
        ends.push(reg.ends.subarray(k));
        ids.push(reg.ids.subarray(32 * k));
        const last = reg.ends.length ? (reg.ends[reg.ends.length - 1] as number) : e;
        if (last > e) {
          e = last;
          continue;
        }
      }
      // Not on the region's chain (yet): one chunk here.
      if (e < bufAt || e + c.max > bufAt + bufLen) {
        bufAt = e;
        bufLen = 0;
        while (bufLen < buf.length && bufAt + bufLen < size) {
          const { bytesRead } = await fh.read(buf, bufLen, Math.min(buf.length - bufLen, size - bufAt - bufLen), bufAt + bufLen);
          if (!bytesRead) throw new Error(`${path} ends at ${bufAt + bufLen} bytes, before its size of ${size}`);
          bufLen += bytesRead;
        }
      }
      const from = e - bufAt;
      let len: number;
      let id: Buffer;
      if (zeroId && from + c.max <= bufLen && zeros.equals(buf.subarray(from, from + c.max))) {
        len = zeroLen;
        id = zeroId;
      } else {
        len = cutLength(buf, from, bufLen, c);
        if (len < 0) len = bufLen - from;
        id = createHash('sha512-256')
          .update(buf.subarray(from, from + len))
          .digest();
      }
      e += len;
      stitched++;
      mine.push(e);
      mineIds.push(id);
    }
    flush();
  } finally {
    await fh.close();
  }
  const n = ends.reduce((s, x) => s + x.length, 0);
  const all = new Float64Array(n);
  let o = 0;
  for (const x of ends) {
    all.set(x, o);
    o += x.length;
  }
  return { ends: all, ids: Buffer.concat(ids), bytes: size, regions: regions.length, stitched };
}

// indexOf: where V is in the sorted ENDS, or -1.
function indexOf(ends: Float64Array, v: number): number {
  let lo = 0;
  let hi = ends.length - 1;
  while (lo <= hi) {
    const m = (lo + hi) >>> 1;
    const x = ends[m] as number;
    if (x === v) return m;
    if (x < v) lo = m + 1;
    else hi = m - 1;
  }
  return -1;
}
