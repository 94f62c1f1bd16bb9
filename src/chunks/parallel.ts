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
import { IdList } from './idlist.ts';
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
// Each chunk in order: where it ends in the file and its 32-byte id (valid only during the call).
export type IdVisitor = (end: number, id: Uint8Array) => void;
export type ScanTally = { bytes: number; regions: number; stitched: number };

// scanIds: every chunk end and id of PATH, collected (see forEachId).
export async function scanIds(path: string, c: Chunker, signal?: AbortSignal, o: ParallelOptions = {}): Promise<ScannedIds> {
  const list = new IdList();
  const t = await forEachId(path, c, (end, id) => list.push(end, id), signal, o);
  return { ...list.done(), ...t };
}

// forEachId: every chunk of PATH in order, the same as scanChunks gives, on
// up to WORKERS threads (default: the cores, at most 4) in regions of at most
// REGION bytes (default 256 MiB; tests make them small). Memory stays bounded
// whatever the size of the disk: at most two regions per worker are asked
// for ahead of the one being stitched. A file too small to share, or whose
// size cannot be known, is scanned here in one pass.
export async function forEachId(path: string, c: Chunker, visit: IdVisitor, signal?: AbortSignal, o: ParallelOptions = {}): Promise<ScanTally> {
  const workers = o.workers ?? Math.min(MAX_WORKERS, availableParallelism());
  const size = sizeOf(path);
  if (c.fixed || workers < 2 || size === undefined || size < 2 * (o.region ?? MIN_REGION)) {
    const bytes = await scanChunks(path, c, (ch) => visit(ch.start + ch.size, ch.id), signal);
    return { bytes, regions: 1, stitched: 0 };
  }
  const count = Math.max(workers, Math.ceil(size / (o.region ?? 256 << 20)));
  const step = Math.ceil(size / count);
  const regions: Region[] = Array.from({ length: count }, (_, i) => ({ at: i * step, end: Math.min(size, (i + 1) * step) })).filter((r) => r.at < size);
  const pool = regionPool(path, size, c, regions, Math.min(workers, regions.length));
  try {
    const stitched = await stitch(path, size, c, regions.length, (i) => pool.get(i, i + 2 * workers), visit, signal);
    return { bytes: size, regions: regions.length, stitched };
  } finally {
    await pool.close();
  }
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

// regionPool: WORKERS threads; get(i, upTo) is region i's cuts, and asks for
// the regions up to UPTO ahead of time; a region's cuts are dropped once got.
function regionPool(path: string, size: number, c: Chunker, regions: Region[], workers: number) {
  const pool = Array.from({ length: workers }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { path, size, c } }));
  const asked = new Map<number, { p: Promise<Cuts>; ok: (x: Cuts) => void; no: (e: unknown) => void }>();
  const queue: number[] = [];
  const idle = [...pool];
  const busy = new Map<Worker, number>();
  let next = 0;
  const pump = () => {
    while (idle.length && queue.length) {
      const w = idle.pop() as Worker;
      const i = queue.shift() as number;
      busy.set(w, i);
      w.postMessage(regions[i]);
    }
  };
  for (const w of pool) {
    w.on('message', (m: Cuts | { error: string }) => {
      const i = busy.get(w) as number;
      busy.delete(w);
      idle.push(w);
      const slot = asked.get(i);
      if ('error' in m) slot?.no(new Error(m.error));
      else slot?.ok(m);
      pump();
    });
    w.on('error', (e) => {
      const i = busy.get(w);
      if (i !== undefined) asked.get(i)?.no(e);
    });
  }
  const ask = (i: number) => {
    if (asked.has(i) || i >= regions.length) return;
    let ok: (x: Cuts) => void = () => {};
    let no: (e: unknown) => void = () => {};
    const p = new Promise<Cuts>((a, b) => {
      ok = a;
      no = b;
    });
    p.catch(() => {});
    asked.set(i, { p, ok, no });
    queue.push(i);
  };
  return {
    get: (i: number, upTo: number): Promise<Cuts> => {
      for (; next <= Math.min(upTo, regions.length - 1); next++) ask(next);
      ask(i);
      pump();
      const p = (asked.get(i) as { p: Promise<Cuts> }).p;
      for (const k of asked.keys()) if (k < i) asked.delete(k);
      return p;
    },
    close: () => Promise.all(pool.map((w) => w.terminate())).then(() => undefined),
  };
}

// stitch: the true chain of cuts from byte 0, taking each region's cuts from
// the first one it shares with the chain, cutting here until then. Returns
// how many chunks were cut here.
async function stitch(path: string, size: number, c: Chunker, count: number, region: (i: number) => Promise<Cuts>, visit: IdVisitor, signal?: AbortSignal): Promise<number> {
  let stitched = 0;
  const fh = await open(path, 'r');
  try {
    const zeros = Buffer.alloc(c.max);
    const zeroLen = cutLength(zeros, 0, c.max, c);
    const zeroId = zeroLen > 0 ? createHash('sha512-256').update(zeros.subarray(0, zeroLen)).digest() : undefined;
    const buf = Buffer.allocUnsafe((4 << 20) + c.max);
    let bufAt = 0;
    let bufLen = 0;
    let e = 0; // the last cut of the true chain
    let r = 0;
    let reg = await region(0);
    let upcoming = count > 1 ? await region(1) : undefined;
    while (e < size) {
      checkpoint(signal);
      while (upcoming && upcoming.at <= e) {
        r++;
        reg = upcoming;
        upcoming = r + 1 < count ? await region(r + 1) : undefined;
      }
      const k = reg.at === e ? 0 : indexOf(reg.ends, e) + 1;
      if (k > 0 || reg.at === e) {
        for (let j = k; j < reg.ends.length; j++) visit(reg.ends[j] as number, reg.ids.subarray(32 * j, 32 * j + 32));
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
      visit(e, id);
    }
  } finally {
    await fh.close();
  }
  return stitched;
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
