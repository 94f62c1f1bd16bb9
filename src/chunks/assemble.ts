// Seeded assembly: write the blob an index describes into a file, taking each
// chunk from where the plan found it — in place already, zeros, a seed (read
// again and hashed: a seed that changed since it was chunked is never used,
// the chunk is fetched instead) or the chunk source (in parallel, at most
// source.parallel at once, each chunk checked against its id, a bad one
// fetched once more, then refused). A chunk already on hand is never fetched
// twice: an interrupted assembly rerun finds its chunks in place. The whole is
// then hashed against the signed raw sha256.
import { writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { bundleError } from '../errors.ts';
import { hashFile } from '../util/hash.ts';
import { checkpoint } from '../util/interrupt.ts';
import { type ChunkIndex, blobSize, chunkSize, chunkStart, indexCount } from './caibx.ts';
import { hexOf, planAssembly, type Plan, type Seed, type SeedTally, type Take } from './plan.ts';
import { chunkId } from './scan.ts';
import { type ChunkSource, decompressChunk } from './store.ts';

export type AssembleOptions = {
  index: ChunkIndex;
  out: string;
  seeds: readonly Seed[];
  source?: ChunkSource;
  // The signed sha256 of the whole blob.
  sha256?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  info?: (line: string) => void;
};

export type Tally = { chunks: number; bytes: number };
export type AssembleReport = {
  out: string;
  size: number;
  chunks: number;
  inPlace: Tally;
  zero: Tally;
  seeds: Array<SeedTally & { stale: number }>;
  // Unique chunks (and their raw bytes) that the source must supply; wire: their stored size when known.
  missing: Tally & { wire?: number };
  fetched: Tally & { wire: number; retried: number };
  // The delta file that came instead of the index and the chunks it carries (its seed is the first): sources/delta.ts.
  delta?: { file: string; from: string; bytes: number };
  sha256?: string;
};

const tally = (index: ChunkIndex, pick: (i: number) => boolean): Tally => {
  let chunks = 0;
  let bytes = 0;
  for (let i = 0; i < indexCount(index); i++)
    if (pick(i)) {
      chunks++;
      bytes += chunkSize(index, i);
    }
  return { chunks, bytes };
};

// assemble: plan, then (unless dryRun) write OUT; returns what came from where.
export async function assemble(o: AssembleOptions): Promise<AssembleReport> {
  const { index } = o;
  const plan = await planAssembly(index, o.out, o.seeds, o.signal);
  const zeroAt = new Uint8Array(indexCount(index));
  for (const k of plan.zero) for (const i of plan.wanted.get(k) ?? []) if (!plan.inPlace[i]) zeroAt[i] = 1;
  const report: AssembleReport = {
    out: o.out,
    size: blobSize(index),
    chunks: indexCount(index),
    inPlace: tally(index, (i) => plan.inPlace[i] === 1),
    zero: tally(index, (i) => zeroAt[i] === 1),
    seeds: plan.seeds.map((s) => ({ ...s, stale: 0 })),
    missing: { chunks: plan.missing.length, bytes: plan.missingBytes },
    fetched: { chunks: 0, bytes: 0, wire: 0, retried: 0 },
  };
  if (o.dryRun) {
    if (o.source?.size) report.missing.wire = await wireSize(o.source, plan.missing, o.signal);
    return report;
  }
  // Created when missing, never truncated: what an interrupted run wrote is kept.
  await (await open(o.out, 'a')).close();
  const fh = await open(o.out, 'r+');
  try {
    const st = await fh.stat();
    const fresh = st.isFile() && st.size === 0;
    if (st.isFile() && st.size !== report.size) await fh.truncate(report.size);
    const put = async (k: string, data: Buffer) => {
      for (const i of plan.wanted.get(k) ?? []) if (!plan.inPlace[i]) await writeAll(fh, data, chunkStart(index, i));
    };
    // Zeros: a fresh (sparse) file already reads as zeros.
    if (!fresh) for (const k of plan.zero) if (plan.wanted.has(k)) await put(k, Buffer.alloc(chunkSize(index, (plan.wanted.get(k) as number[])[0] as number)));
    const toFetch = [...plan.missing];
    // Seeds, read in their own order (sequential on a disk) in spans of up to
    // 8 MiB, each chunk hashed again.
    const takes = [...plan.take].sort((x, y) => x[1].seed - y[1].seed || x[1].offset - y[1].offset);
    const sizeOf = (k: string) => chunkSize(index, (plan.wanted.get(k) as number[])[0] as number);
    const span = Buffer.allocUnsafe(Math.max(SPAN, index.sizes.max));
    for (let i = 0; i < takes.length; ) {
      checkpoint(o.signal);
      const first = (takes[i] as [string, Take])[1];
      let j = i + 1;
      let end = first.offset + sizeOf((takes[i] as [string, Take])[0]);
      for (; j < takes.length; j++) {
        const [k, t] = takes[j] as [string, Take];
        const e = Math.max(end, t.offset + sizeOf(k));
        if (t.seed !== first.seed || e - first.offset > span.length) break;
        end = e;
      }
      const got = await readSpan((o.seeds[first.seed] as Seed).path, span, first.offset, end - first.offset);
      for (; i < j; i++) {
        const [k, t] = takes[i] as [string, Take];
        const size = sizeOf(k);
        const from = t.offset - first.offset;
        const data = from + size <= got ? span.subarray(from, from + size) : undefined;
        if (data && keyOfBuf(chunkId(data)) === k) await put(k, data);
        else {
          (report.seeds[t.seed] as { stale: number }).stale++;
          toFetch.push(k);
        }
      }
    }
    if (toFetch.length) await fetchAll(o, plan, toFetch, put, report);
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (o.sha256) {
    const { sha256: sum } = await hashFile(o.out);
    if (sum !== o.sha256) throw bundleError(`assembled image ${o.out} has sha256 ${sum} but the manifest says ${o.sha256}: the chunk index does not describe this image; pack the bundle again`);
    report.sha256 = sum;
  }
  return report;
}

const keyOfBuf = (b: Buffer) => b.toString('latin1');

// fetchAll: the chunks no seed held, from the source, source.parallel at a time.
export async function fetchAll(
  o: Pick<AssembleOptions, 'index' | 'source' | 'signal' | 'info'>,
  plan: Pick<Plan, 'wanted'>,
  keys: string[],
  put: (k: string, d: Buffer, stored: Buffer) => Promise<void>,
  report: Pick<AssembleReport, 'fetched'>,
): Promise<void> {
  const source = o.source;
  if (!source) throw bundleError(`${keys.length} chunks (first ${hexOf(keys[0] as string)}) are in no seed and no chunk store was given: pass --store`);
  let next = 0;
  const one = async (k: string) => {
    const id = hexOf(k);
    const size = chunkSize(o.index, (plan.wanted.get(k) as number[])[0] as number);
    for (let attempt = 0; ; attempt++) {
      const stored = await source.get(id, o.signal);
      if (!stored) throw bundleError(`${source.name} lacks chunk ${id} (${size} bytes): the store is incomplete; copy it again or make it with reimage pack --chunks`);
      const data = decompressChunk(stored, size);
      if (data && data.length === size && keyOfBuf(chunkId(data)) === k) {
        await put(k, data, stored);
        report.fetched.chunks++;
        report.fetched.bytes += size;
        report.fetched.wire += stored.length;
        return;
      }
      if (attempt >= 1) throw bundleError(`${source.name} serves chunk ${id} with bytes that do not hash to its id, twice: the store is corrupt; copy it again`);
      report.fetched.retried++;
      o.info?.(`chunk ${id} from ${source.name} does not match its id: fetching it again`);
    }
  };
  // On the first failure the others finish the chunk in hand (it is written,
  // so a rerun finds it in place) and take no new one; then the failure is thrown.
  let failure: { e: unknown } | undefined;
  const worker = async () => {
    while (next < keys.length && !failure) {
      try {
        checkpoint(o.signal);
        await one(keys[next++] as string);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(source.parallel, keys.length)) }, worker));
  if (failure) throw failure.e;
}

// wireSize: the stored size of KEYS' chunks, asked source.parallel at a
// time (over HTTP: HEADs on the kept-alive connections); undefined when the
// source cannot say for one of them (then no more are asked).
async function wireSize(source: ChunkSource, keys: string[], signal?: AbortSignal): Promise<number | undefined> {
  const size = source.size;
  if (!size) return undefined;
  let sum = 0;
  let next = 0;
  let unknown = false;
  const worker = async () => {
    while (next < keys.length && !unknown) {
      checkpoint(signal);
      const s = await size(hexOf(keys[next++] as string));
      if (s === undefined) unknown = true;
      else sum += s;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(source.parallel, keys.length)) }, worker));
  return unknown ? undefined : sum;
}

// writeAll: synchronous (a pack of small writes; the thread pool's round trip cost more than each).
async function writeAll(fh: FileHandle, data: Buffer, at: number): Promise<void> {
  let done = 0;
  while (done < data.length) done += writeSync(fh.fd, data, done, data.length - done, at + done);
}

const SPAN = 8 << 20;

// readSpan: LEN bytes of PATH at AT into BUF; how many were read (0 when the seed cannot be read: its chunks are fetched).
async function readSpan(path: string, buf: Buffer, at: number, len: number): Promise<number> {
  const h = await open(path, 'r').catch(() => undefined);
  if (!h) return 0;
  try {
    let got = 0;
    while (got < len) {
      const { bytesRead } = await h.read(buf, got, len - got, at + got);
      if (!bytesRead) break;
      got += bytesRead;
    }
    return got;
  } catch {
    return 0;
  } finally {
    await h.close();
  }
}
