// pack: turn a raw disk image into a bundle directory: the compressed image,
// manifest.json (sizes and sha256 of compressed and raw bytes, partition
// table, mount plan), the block map (image.bmap, bmaptool format) and, with
// --retain, the retention list.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleError, usageError } from '../errors.ts';
import { tableProblem } from '../image/bounds.ts';
import { codecs } from '../codecs/index.ts';
import { parseList } from '../retention/list.ts';
import { hashFile } from '../util/hash.ts';
import { withProgress } from '../util/progress.ts';
import { blocksCount, formatBmap, mappedBlocks, parseBmap } from '../bmap/format.ts';
import { scanImage } from '../bmap/scan.ts';
import type { Log } from '../util/log.ts';
import { VERSION } from '../version.ts';
import { rawInput } from './input.ts';
import { mountsFromFlags, mountsFromFstab, readTable } from './layout.ts';
import { formatIssues, Manifest, MANIFEST_FORMAT, type CodecName, type Mount } from './manifest.ts';
import type { Layout } from '../target/layout.ts';
import { signManifest } from './sign.ts';
import { parseSelector } from './keepspec.ts';
import { packChunks, type ChunkOptions } from './chunked.ts';

export type PackOptions = {
  image: string;
  out: string;
  codec: CodecName;
  retain?: string;
  mounts: readonly string[];
  sign?: string;
  compatible?: string;
  // Partitions every run of the bundle keeps (selectors: target/kept.ts).
  keep?: readonly string[];
  version?: string;
  // An existing .bmap (bmaptool create) to use instead of finding the zero blocks.
  bmap?: string;
  // A compressed IMAGE may decode to at most this many bytes (--max-size; default MAX_DECODED).
  maxDecoded?: number;
  // --chunks: also a casync-compatible chunk index and store (see bundle/chunked.ts).
  chunks?: ChunkOptions;
  // reimage capture: the mount plan read from the reference disk (its kept
  // partitions are holes in the image), and the disk's layout fingerprint.
  mountPlan?: Mount[];
  layout?: Layout;
};

export const BMAP_FILE = 'image.bmap';
export const RETENTION_FILE = 'retention.list';

// pack: IMAGE (raw, or compressed as shipped: decoded first) into the bundle OUT.
export async function pack(o: PackOptions, log: Log): Promise<Manifest> {
  // Before anything lands in OUT (a compressed input is decoded there).
  await refuseOut(o.out);
  for (const s of o.keep ?? []) parseSelector(s, `--keep ${s}`);
  const input = await rawInput(o.image, o.out, log, o.maxDecoded);
  try {
    return await packRaw({ ...o, image: input.path }, log);
  } finally {
    await input.done();
  }
}

// packRaw: a raw image file into the bundle OUT (capture calls it with its copy of the reference disk).
export async function packRaw(o: PackOptions, log: Log): Promise<Manifest> {
  const st = await stat(o.image).catch(() => undefined);
  if (!st?.isFile()) throw usageError(`image ${o.image} is not a readable file: give the path of a raw disk image`);
  if (st.size === 0 || st.size % 512 !== 0) throw bundleError(`image ${o.image} is ${st.size} bytes, not a whole number of 512-byte sectors: pass a raw disk image`);
  const retention = o.retain ? await readFile(o.retain).catch(() => undefined) : undefined;
  if (o.retain && !retention) throw usageError(`retention list ${o.retain} cannot be read: check the path`);
  if (retention) parseList(retention, o.retain!);
  const importedBytes = o.bmap ? await readFile(o.bmap).catch(() => undefined) : undefined;
  if (o.bmap && !importedBytes) throw usageError(`block map ${o.bmap} cannot be read: check the path`);
  const imported = importedBytes ? { map: parseBmap(importedBytes, o.bmap!), origin: o.bmap! } : undefined;

  const table = await log.step('read the partition table', () => readTable(o.image));
  const misfit = tableProblem(table, st.size, 'the image');
  if (misfit) throw bundleError(`image ${o.image}: ${misfit}`);
  const mounts = o.mountPlan ?? (o.mounts.length ? mountsFromFlags(table, o.mounts) : await log.step('read /etc/fstab from the image', () => mountsFromFstab(o.image, table)));
  await mkdir(o.out, { recursive: true });
  const codec = codecs[o.codec];
  const file = `image.raw${codec.ext}`;
  const dest = join(o.out, file);
  const { map, ...raw } = await log.step(imported ? 'hash the raw image, check its block map' : 'hash the raw image, map its data blocks', () =>
    withProgress('hashing and mapping', st.size, log, (tick) => scanImage(o.image, imported, tick)),
  );
  const bmapBytes = formatBmap(map, `made by reimage pack ${VERSION}`);
  await writeFile(join(o.out, BMAP_FILE), bmapBytes);
  log.info(
    `block map: ${mappedBlocks(map)} of ${blocksCount(map)} blocks of ${map.blockSize} bytes hold data (${((100 * mappedBlocks(map)) / Math.max(1, blocksCount(map))).toFixed(1)} %), in ${map.ranges.length} ranges`,
  );
  const chunks = o.chunks ? await packChunks(o.image, st.size, o.out, o.chunks, log) : undefined;
  await log.step(`compress with ${o.codec}`, () => withProgress('compressing', st.size, log, (tick) => codec.encode(o.image, dest, tick)));
  const size = (await stat(dest)).size;
  const packed = await log.step('hash the compressed image', () => withProgress('hashing', size, log, (tick) => hashFile(dest, undefined, undefined, tick)));
  // The bytes that were checked and hashed are the bytes written (never a second read of --retain).
  if (retention) await writeFile(join(o.out, RETENTION_FILE), retention);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    created: new Date().toISOString(),
    tool: `reimage ${VERSION}`,
    image: { file, codec: o.codec, size: packed.size, sha256: packed.sha256 },
    raw,
    bmap: { file: BMAP_FILE, sha256: createHash('sha256').update(bmapBytes).digest('hex') },
    ...(chunks ? { chunks } : {}),
    table,
    mounts,
    // Named with its sha256: the signature over the manifest then covers the list's bytes too.
    ...(retention ? { retention: { file: RETENTION_FILE, sha256: createHash('sha256').update(retention).digest('hex') } } : {}),
    ...(o.keep?.length ? { keep: [...o.keep] } : {}),
    ...(o.compatible ? { compatible: o.compatible } : {}),
    ...(o.version ? { version: o.version } : {}),
    ...(o.layout ? { layout: o.layout } : {}),
  };
  const valid = Manifest.safeParse(manifest);
  if (!valid.success) throw usageError(`the manifest would be invalid: ${formatIssues(valid.error)}`);
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  // Sign first, so a bad key leaves no manifest behind.
  const sig = o.sign ? await signManifest(bytes, o.sign) : undefined;
  await writeFile(join(o.out, 'manifest.json'), bytes);
  if (sig) {
    await writeFile(join(o.out, 'manifest.json.sig'), sig.sig);
    await writeFile(join(o.out, 'manifest.json.minisig'), sig.minisig);
  }
  return manifest;
}

// refuseOut: --out must be a new or empty directory: pack never mixes a new
// bundle's files with an old one's, nor writes over a file.
export async function refuseOut(out: string): Promise<void> {
  const st = await stat(out).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw usageError(`--out ${out} exists and is not a directory: give a new or empty directory for the bundle`);
  const names = await readdir(out);
  if (names.length) {
    throw usageError(
      `--out ${out} is not empty (${names.length} ${names.length === 1 ? 'entry' : 'entries'}, e.g. ${names.sort()[0]}): give a new or empty directory; pack never overwrites a bundle`,
      { out, entries: names.length },
    );
  }
}
