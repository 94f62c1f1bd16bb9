// A chunked bundle brought for a run (reimage run --bundle https://…, or
// rd.reimage.bundle= in the initramfs) without its compressed image: trust
// first (manifest and signature, then the index checked against its signed
// sha256), then the image assembled into the RAM stage as seekable zstd from
// the seeds — the target disk, still untouched (its kept index when it has
// one, else the whole disk chunked on the fly), and any --seed — with only
// the chunks no seed holds downloaded (chunks/compact.ts). The RAM stage holds
// a compressed image, never a reference to the disk the write overwrites.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMPACT_FILE, COMPACT_SUM } from '../bundle/chunked.ts';
import { parseIndex } from '../chunks/caibx.ts';
import { assembleCompressed, type CompactReport } from '../chunks/compact.ts';
import type { Seed } from '../chunks/plan.ts';
import { bundleError, ReimageError } from '../errors.ts';
import { human } from '../util/bytes.ts';
import { bundleFiles, type readTrusted, writeTrusted } from './bring.ts';
import { storeOf } from './seeded.ts';
import { bringDelta, deltaFor, dropDelta } from './delta.ts';
import type { Reader, SourceEnv } from './types.ts';

// What a run seeds from: SEEDS decided once the bundle is known to be chunked (the target disk is only read then).
export type Seeding = { seeds: () => Promise<Seed[]>; jobs: number; cache: string };

export type Trusted = Awaited<ReturnType<typeof readTrusted>>;

// ramFor: the tmpfs a chunked bundle's assembly needs: the compressed image
// with a quarter more (the frames are compressed at level 3, pack's at 9;
// measured in the README), the index and the small files.
export const ramFor = (t: Trusted, small: number) => t.manifest.image.size + Math.ceil(t.manifest.image.size / 4) + small + (4 << 20);

// assembleBundle: the chunked bundle T (read from R at SPEC) into DIR (a tmpfs made by ROOM): small files, then the assembled image.
// RAM (the run's RAM check) is asked again once the chunks to download are
// known: they wait in the chunk cache (seeding.cache, RAM in the initramfs)
// until the image is written, beside the stage.
export async function assembleBundle(
  spec: string,
  r: Reader,
  t: Trusted,
  dir: string,
  o: SourceEnv & { seeding: Seeding; room: (bytes: number) => Promise<void>; ram?: (bytes: number) => Promise<unknown> },
): Promise<CompactReport> {
  const c = t.manifest.chunks;
  if (!c) throw bundleError(`bundle ${r.where} has no chunk index`);
  // The seeds first (the target disk only read): a delta made against the index of one of them brings the index and its chunks.
  const found = await o.seeding.seeds();
  const indexFile = { name: c.index.file, expect: { sha256: c.index.sha256, size: c.index.size } };
  const small = bundleFiles(t.manifest).slice(1);
  const sizes = await Promise.all(small.map(async (f) => f.expect.size ?? (await r.size(f.name)) ?? 1 << 20));
  const plain = ramFor(t, sizes.reduce((a, b) => a + b, 0) + c.index.size);
  let d = deltaFor(c, found);
  // A delta needs its payload (its chunks) in the stage beside the index it gives, its file in the chunk cache (none
  // more when an earlier run or a plan left it whole), and both again in the process while it is decoded: when RAM
  // cannot take that, the index and the store serve (they need no more than without one).
  const cached = d ? join(o.seeding.cache, `${d.sha256}.rdelta`) : '';
  const onHand = d && (await stat(cached).catch(() => undefined))?.size === d.size ? d.size : 0;
  const withDelta = d ? plain + d.raw : plain;
  if (
    d &&
    o.ram &&
    !(await o.ram(withDelta + d.size - onHand + d.size + d.raw).then(
      () => true,
      (e: unknown) => (e instanceof ReimageError && e.exit === 'memory' ? false : Promise.reject(e)),
    ))
  ) {
    o.log.warn(`the delta ${d.file} (${human(d.size)}, ${human(d.raw)} decoded) does not fit the RAM available besides the stage: the index and the chunk store are used instead`);
    d = undefined;
  }
  const bytes = d ? withDelta : plain;
  await o.room(bytes);
  // The delta file waits in the chunk cache: a run cut before its point of no return, or a plan, leaves it for the next run.
  if (d) await mkdir(o.seeding.cache, { recursive: true, mode: 0o700 });
  const viaDelta = d ? await bringDelta(r, dir, c, d, found, o.log, cached) : undefined;
  for (const f of viaDelta ? small : [indexFile, ...small]) await r.bring(f.name, join(dir, f.name), f.expect, () => {});
  const index = viaDelta?.index ?? parseIndex(await readFile(join(dir, c.index.file)));
  if (typeof index === 'string') throw bundleError(`bundle chunk index ${c.index.file} from ${r.where} ${index}: pack the bundle again`);
  const seeds = viaDelta ? [viaDelta.seed, ...found] : found;
  const source = await storeOf(spec, r, c.store, { ...o, jobs: o.seeding.jobs });
  const out = join(dir, COMPACT_FILE);
  o.log.info(`assemble the image from ${seeds.map((s) => s.path).join(', ') || 'no seed'} and ${source.name} into RAM (at most ${human(bytes)})`);
  const report = await assembleCompressed({
    index,
    out,
    seeds,
    source,
    cache: o.seeding.cache,
    sha256: t.manifest.raw.sha256,
    beforeFetch: async (cacheBytes, chunks) => {
      const ram = o.ram;
      if (!ram) return;
      await ram(bytes + cacheBytes).catch((e: unknown) => {
        if (!(e instanceof ReimageError) || e.exit !== 'memory') throw e;
        const { need, avail } = e.facts as { need: number; avail: number };
        throw new ReimageError(
          'memory',
          `assembling the image needs ${human(need)} of RAM (the ${human(bytes)} stage, up to ${human(cacheBytes)} for the ${chunks} chunks to download, kept in ${o.seeding.cache} until the image is written, the decoder and the runtime) but only ${human(avail)} is available: add RAM, or fetch the bundle to local storage first (reimage fetch) and run from there`,
          e.facts,
        );
      });
    },
    ...(o.signal ? { signal: o.signal } : {}),
    info: o.log.info,
  }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    throw new ReimageError(
      'memory',
      `the image assembled from chunks does not fit the ${human(bytes)} RAM stage (${human(t.manifest.image.size)} compressed by pack): free RAM, or fetch the compressed image instead (a bundle URL of the same image without chunks)`,
    );
  });
  if (viaDelta && d) {
    report.delta = { file: d.file, from: d.from, bytes: d.size };
    await dropDelta(dir, d);
  }
  for (const s of report.seeds) o.log.info(`seed ${s.name}: ${s.chunks} chunks (${human(s.bytes)})${s.stale ? `, ${s.stale} changed since and fetched` : ''}${s.error ? ` (${s.error})` : ''}`);
  o.log.info(
    `assembled ${human(report.size)} from seeds and ${report.fetched.chunks} downloaded chunks (${human(report.fetched.wire)} over the wire, ${report.cached.chunks} already on hand): ${human(report.image.size)} in RAM, raw sha256 ok`,
  );
  await writeFile(join(dir, COMPACT_SUM), `${report.image.sha256} ${report.image.size}\n`);
  await writeTrusted(dir, t);
  return report;
}
