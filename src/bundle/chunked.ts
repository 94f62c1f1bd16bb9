// A bundle's chunk index: pack --chunks writes it (or takes one `casync make`
// made, after checking it against the image) with its chunk store, and names
// it in the manifest; loadChunked reads a bundle for assembly — manifest and
// signature, then the index checked against the manifest's size and sha256 —
// without needing the compressed image (a machine that assembles has none).
import { createHash } from 'node:crypto';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { readSync } from 'node:fs';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { bundleError, usageError } from '../errors.ts';
import { type ChunkIndex, chunkSize, chunkStart, formatIndex, idHex, indexCount, parseIndex } from '../chunks/caibx.ts';
import { decodeDelta, encodeDelta } from '../chunks/delta.ts';
import { type ChunkSizes, sizesProblem } from '../chunks/chunker.ts';
import { indexMismatch, makeIndex } from '../chunks/make.ts';
import { chunkPath } from '../chunks/store.ts';
import { human } from '../util/bytes.ts';
import type { Log } from '../util/log.ts';
import { Manifest, type Chunks } from './manifest.ts';
import type { TrustedKey } from './sign.ts';
import { readSigned } from './signed.ts';

export const INDEX_FILE = 'image.caibx';
// The index as one zstd frame (level 19): what a fetch downloads.
export const INDEX_ZST_FILE = 'image.caibx.zst';
export const STORE_DIR = 'chunks';
// Where `fetch --seed` assembles the raw image, next to the signed manifest
// (which stays as signed: the raw sha256 it states covers every byte of it).
export const ASSEMBLED_FILE = 'assembled.img';
// Where a run assembles a chunked bundle's image in RAM from seeds: a seekable
// zstd file (sources/assembled.ts), with its own size and sha256 in
// COMPACT_SUM beside it (the raw sha256 it decodes to is the signed one).
export const COMPACT_FILE = 'assembled.zst';
export const COMPACT_SUM = 'assembled.zst.sum';
// Where a run keeps a chunked bundle's index in the new system (stages/finish.ts), for the next update to seed from (sources/kept.ts).
export const KEPT_INDEX = '/var/lib/reimage/last.caibx';
// casync's own zstd level; a chunk is compressed alone, so higher levels gain little.
const LEVEL = 3;

// deltaFrom: earlier releases (bundle directories or .caibx files) a delta file is made against.
export type ChunkOptions = { sizes: ChunkSizes; store?: string; importIndex?: string; deltaFrom?: readonly string[] };

// parseChunkSize: casync's --chunk-size form, MIN:AVG:MAX (bytes, or with K/M).
export function parseChunkSize(text: string): ChunkSizes {
  const n = (s: string) => {
    const m = /^([0-9]+)([KM]?)$/i.exec(s);
    return m ? Number(m[1]) * (m[2] ? (m[2].toUpperCase() === 'K' ? 1024 : 1 << 20) : 1) : Number.NaN;
  };
  const parts = text.split(':').map(n);
  const [min, avg, max] = parts;
  const sizes = { min: min ?? Number.NaN, avg: avg ?? Number.NaN, max: max ?? Number.NaN };
  const why = parts.length !== 3 ? 'three sizes are needed' : sizesProblem(sizes);
  if (why) throw usageError(`--chunk-size ${text} is not usable (${why}): write MIN:AVG:MAX, e.g. --chunk-size 1K:4K:16K`);
  return sizes;
}

// packChunks: the chunk index of IMAGE (SIZE bytes) written into bundle OUT,
// its chunks into the store; returns the manifest's `chunks` field.
export async function packChunks(image: string, size: number, out: string, o: ChunkOptions, log: Log): Promise<Chunks> {
  const storeDir = o.store ?? join(out, STORE_DIR);
  const inside = relative(resolve(out), resolve(storeDir));
  const store = /^[A-Za-z0-9._-]+$/.test(inside) && inside !== '.' && inside !== '..' ? inside : undefined;
  let index: ChunkIndex;
  let bytes: Buffer;
  if (o.importIndex) {
    const path = o.importIndex;
    const read = await readFile(path).catch(() => undefined);
    if (!read) throw usageError(`chunk index ${path} cannot be read: check the path`);
    bytes = read;
    const parsed = parseIndex(bytes);
    if (typeof parsed === 'string') throw bundleError(`chunk index ${path} ${parsed}`);
    const wrong = await log.step('check the chunk index against the image', () => indexMismatch(parsed, image, size));
    if (wrong) throw bundleError(`chunk index ${path} ${wrong}: make it from this image (casync make INDEX ${image})`);
    const missing = await firstMissing(parsed, storeDir);
    if (missing) throw bundleError(`chunk store ${storeDir} lacks chunk ${missing} named by ${path}: give the store casync make wrote (--chunk-store)`);
    index = parsed;
  } else {
    await mkdir(storeDir, { recursive: true });
    const s = o.sizes;
    const made = await log.step(`chunk the raw image (${s.min}/${s.avg}/${s.max} bytes) into ${storeDir}`, () => makeIndex(image, s, { dir: storeDir, level: LEVEL }));
    index = made.index;
    bytes = formatIndex(index);
    log.info(
      `chunks: ${indexCount(index)} of avg ${human(size / Math.max(1, indexCount(index)))}, ${made.stored.chunks} new in the store (${human(made.stored.bytes)}), ${(made.bytes / 1048576 / Math.max(made.seconds, 1e-3)).toFixed(0)} MiB/s`,
    );
  }
  // The bytes checked are the bytes written (an imported index is kept as casync wrote it).
  await writeFile(join(out, INDEX_FILE), bytes);
  const zst = zstdCompressSync(bytes, { params: { [constants.ZSTD_c_compressionLevel]: 19 } });
  await writeFile(join(out, INDEX_ZST_FILE), zst);
  const sum = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const deltas = [];
  for (const from of o.deltaFrom ?? []) deltas.push(await packDelta(from, index, bytes, image, out, log));
  return {
    index: { file: INDEX_FILE, size: bytes.length, sha256: sum(bytes), zst: { file: INDEX_ZST_FILE, size: zst.length, sha256: sum(zst) } },
    ...(store ? { store } : {}),
    ...(deltas.length ? { deltas } : {}),
    sizes: index.sizes,
    digest: 'sha512-256',
    compression: 'zstd',
  };
}

// packDelta: the delta file (chunks/delta.ts) from the release FROM (a bundle
// directory, its index checked against its manifest, or a .caibx file) to
// INDEX (BYTES, of IMAGE), written into OUT; its manifest entry. The delta is
// decoded once here and must give BYTES back exactly.
async function packDelta(from: string, index: ChunkIndex, bytes: Buffer, image: string, out: string, log: Log): Promise<NonNullable<Chunks['deltas']>[number]> {
  const isDir = (await stat(from).catch(() => undefined))?.isDirectory();
  let oldBytes: Buffer | undefined;
  if (isDir) {
    const m = await readFile(join(from, 'manifest.json'), 'utf8').then(
      (t) => Manifest.safeParse(JSON.parse(t)),
      () => undefined,
    );
    const c = m?.success ? m.data.chunks : undefined;
    if (!c)
      throw usageError(`--delta-from ${from}: no chunked bundle there (its manifest.json is missing, invalid or names no chunk index): give an earlier bundle packed with --chunks, or its .caibx`);
    oldBytes = await readFile(join(from, c.index.file)).catch(() => undefined);
    if (!oldBytes || createHash('sha256').update(oldBytes).digest('hex') !== c.index.sha256)
      throw bundleError(`--delta-from ${from}: its chunk index ${c.index.file} is missing or does not match its manifest: copy that bundle again`);
  } else {
    oldBytes = await readFile(from).catch(() => undefined);
    if (!oldBytes) throw usageError(`--delta-from ${from} cannot be read: give an earlier bundle directory or its .caibx`);
  }
  const old = parseIndex(oldBytes);
  if (typeof old === 'string') throw bundleError(`--delta-from ${from}: its chunk index ${old}`);
  const fromSum = createHash('sha256').update(oldBytes).digest('hex');
  const fh = await open(image, 'r');
  try {
    const made = await log.step(`make the delta from ${from} (index sha256 ${fromSum.slice(0, 16)}…)`, async () => {
      const chunk = (i: number) => {
        const b = Buffer.alloc(chunkSize(index, i));
        readSync(fh.fd, b, 0, b.length, chunkStart(index, i));
        return b;
      };
      return encodeDelta(old, index, chunk);
    });
    const back = decodeDelta(made.file, made.raw, old, indexCount(index));
    if (typeof back === 'string' || !formatIndex(back.index).equals(bytes)) {
      throw bundleError(
        `the delta from ${from} does not give this bundle's index back${typeof back === 'string' ? ` (it ${back})` : ''}: the index is not in the form reimage writes (made by casync make?); pack without --delta-from`,
      );
    }
    const file = `delta-${fromSum.slice(0, 16)}.rdelta`;
    await writeFile(join(out, file), made.file);
    log.info(`delta from ${from}: ${human(made.file.length)} (${indexCount(back.dataIndex)} chunks it lacks, ${human(back.data.length)} raw, and the index against its own)`);
    return { from: fromSum, file, size: made.file.length, sha256: createHash('sha256').update(made.file).digest('hex'), raw: made.raw };
  } finally {
    await fh.close();
  }
}

// firstMissing: the first chunk of INDEX the store directory lacks, or undefined.
async function firstMissing(index: ChunkIndex, dir: string): Promise<string | undefined> {
  const seen = new Set<string>();
  for (let i = 0; i < indexCount(index); i++) {
    const id = idHex(index, i);
    if (seen.has(id)) continue;
    seen.add(id);
    if (!(await stat(join(dir, chunkPath(id))).catch(() => undefined))) return id;
  }
  return undefined;
}

export type ChunkedBundle = { dir: string; manifest: Manifest; chunks: Chunks; index: ChunkIndex; storeDir?: string; signedBy?: string };

// loadChunked: a bundle's manifest (signature checked over the bytes parsed)
// and its chunk index, the index's bytes checked against the manifest.
export async function loadChunked(where: string, trusted: TrustedKey[] = []): Promise<ChunkedBundle> {
  const { dir, path, manifest, signedBy } = await readSigned(where, trusted);
  const chunks = manifest.chunks;
  if (!chunks) throw bundleError(`bundle manifest ${path} names no chunk index: pack the bundle again with reimage pack --chunks`);
  const file = join(dir, chunks.index.file);
  const ib = await readFile(file).catch(() => undefined);
  if (!ib) throw bundleError(`bundle chunk index ${file} is missing: copy the whole bundle directory`);
  const index = signedIndex(ib, chunks);
  if (!('ends' in index)) throw bundleError(`bundle chunk index ${file} ${index.why}: ${index.altered ? 'the copy is truncated or altered; copy the bundle again' : 'pack the bundle again'}`);
  const total = indexCount(index) ? (index.ends[indexCount(index) - 1] as number) : 0;
  if (total !== manifest.raw.size) throw bundleError(`bundle chunk index ${file} describes ${total} bytes but the raw image is ${manifest.raw.size}: pack the bundle again`);
  return { dir, manifest, chunks, index, ...(chunks.store ? { storeDir: join(dir, chunks.store) } : {}), ...(signedBy ? { signedBy } : {}) };
}

// signedIndex: BYTES as the index C names — its signed size and sha256, then
// parsed — or why not (altered: the bytes are not the signed ones).
export function signedIndex(bytes: Buffer, c: Chunks): ChunkIndex | { why: string; altered: boolean } {
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== c.index.size || sum !== c.index.sha256)
    return { why: `is ${bytes.length} bytes with sha256 ${sum} but the manifest says ${c.index.size} bytes, ${c.index.sha256}`, altered: true };
  const x = parseIndex(bytes);
  return typeof x === 'string' ? { why: x, altered: false } : x;
}

// indexTransfer: the index file a fetch downloads, with what it must hash
// to: the zstd copy when the manifest names one, else the plain index.
export function indexTransfer(c: Chunks): { name: string; expect: { sha256: string; size: number } } {
  const f = c.index.zst ?? c.index;
  return { name: f.file, expect: { sha256: f.sha256, size: f.size } };
}

// readBroughtIndex: the index from what indexTransfer brought into DIR (its
// size and sha256 already checked against the manifest): a zstd copy is
// decompressed, never past the plain index's signed size, checked against
// the plain index's size and sha256 and written beside it as the plain file
// (casync and assemble --bundle read that one). WHERE names the bundle.
export async function readBroughtIndex(dir: string, c: Chunks, where: string): Promise<ChunkIndex> {
  let bytes: Buffer = await readFile(join(dir, indexTransfer(c).name));
  const z = c.index.zst;
  if (z) {
    let raw: Buffer | undefined;
    try {
      raw = zstdDecompressSync(bytes, { maxOutputLength: Math.max(1, c.index.size) });
    } catch {
      raw = undefined;
    }
    const sum = raw ? createHash('sha256').update(raw).digest('hex') : '';
    if (!raw || raw.length !== c.index.size || sum !== c.index.sha256) {
      throw bundleError(
        `bundle chunk index ${z.file} from ${where} ${raw ? `decompresses to ${raw.length} bytes with sha256 ${sum}` : `does not decompress to at most ${c.index.size} bytes`} but the manifest says ${c.index.file} is ${c.index.size} bytes, ${c.index.sha256}: the bundle was altered or packed wrongly; pack it again`,
      );
    }
    bytes = raw;
    await writeFile(join(dir, c.index.file), bytes);
  }
  const index = parseIndex(bytes);
  if (typeof index === 'string') throw bundleError(`bundle chunk index ${c.index.file} from ${where} ${index}: pack the bundle again`);
  return index;
}

// asAssembled: how a chunked bundle whose raw image was assembled (fetch --seed)
// is read: the image is ASSEMBLED_FILE, codec none, checked against the
// signed raw size and sha256. Only the in-memory view changes; the manifest's
// bytes and signature stay as the packer made them.
export function asAssembled(m: Manifest): Manifest {
  return { ...m, image: { file: ASSEMBLED_FILE, codec: 'none', size: m.raw.size, sha256: m.raw.sha256 } };
}

// asCompacted: the same for an image assembled into RAM as seekable zstd
// (COMPACT_FILE): its size and sha256 are the assembler's (SUM), and the run
// proves the raw bytes against the signed raw sha256 before writing.
export function asCompacted(m: Manifest, sum: { size: number; sha256: string }): Manifest {
  return { ...m, image: { file: COMPACT_FILE, codec: 'zstd', size: sum.size, sha256: sum.sha256 } };
}

// readCompactSum: COMPACT_SUM in DIR ("SHA256 SIZE"), or undefined when absent or malformed.
export async function readCompactSum(dir: string): Promise<{ size: number; sha256: string } | undefined> {
  const m = /^([0-9a-f]{64}) ([0-9]+)\n?$/.exec((await readFile(join(dir, COMPACT_SUM), 'utf8').catch(() => '')) ?? '');
  return m ? { sha256: m[1] as string, size: Number(m[2]) } : undefined;
}
