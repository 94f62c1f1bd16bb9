// `reimage fetch URL --out DIR --seed PATH…` for a chunked bundle: trust
// first (manifest and signature read and checked, then the chunk index it
// names brought and checked against the signed sha256), then the raw image
// assembled into DIR/assembled.img from the seeds, only the chunks no seed
// holds downloaded (each checked against its id; an interrupted run finds
// what it wrote in place and fetches nothing twice), the whole checked
// against the signed raw sha256, and the manifest written last, unchanged:
// loadBundle reads the assembled image as codec none against that raw hash.
import { isUrl } from '../util/url.ts';
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ASSEMBLED_FILE, indexTransfer, readBroughtIndex } from '../bundle/chunked.ts';
import { loadBundle } from '../bundle/read.ts';
import type { TrustedKey } from '../bundle/sign.ts';
import { type AssembleReport, assemble } from '../chunks/assemble.ts';
import type { Seed } from '../chunks/plan.ts';
import { dirSource, type ChunkSource } from '../chunks/store.ts';
import { bundleError, ReimageError, usageError } from '../errors.ts';
import { DEFAULT_RETRIES } from '../net/download.ts';
import { loadNetOptions } from '../net/options.ts';
import { bundleFiles, dropOtherManifest, readTrusted, writeTrusted } from './bring.ts';
import { httpChunkSource } from './chunks.ts';
import { bringDelta, deltaFor, dropDelta, indexOnHand } from './delta.ts';
import { baseUrl } from './http.ts';
import { openSource } from './index.ts';
import type { Reader, SourceEnv } from './types.ts';

export type SeededOptions = SourceEnv & { trusted: readonly TrustedKey[]; seeds: Seed[]; jobs: number; dryRun: boolean };
export type SeededResult = { report: AssembleReport; signedBy?: string; index: number; fetched: number };

// fetchSeededBundle: SPEC's chunked bundle into OUT (made when missing), assembled from seeds.
export async function fetchSeededBundle(spec: string, out: string, o: SeededOptions): Promise<SeededResult & { where: string; out: string }> {
  await mkdir(out, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new ReimageError('environment', `cannot create the bundle directory ${out} (${e.code}): choose another --out`);
  });
  const r = await openSource(spec, o);
  try {
    return { ...(await fetchSeeded(spec, r, out, o)), where: r.where, out };
  } finally {
    await r.close();
  }
}

// fetchSeeded: the chunked bundle at SPEC (opened as R) into OUT, its raw image assembled from seeds and the store.
export async function fetchSeeded(spec: string, r: Reader, out: string, o: SeededOptions): Promise<SeededResult> {
  const t = await readTrusted(r, o.trusted);
  if (t.signedBy) o.log.info(`bundle signature by trusted key ${t.signedBy} verified`);
  const c = t.manifest.chunks;
  if (!c) throw usageError(`bundle ${r.where} has no chunk index (its manifest names no chunks): fetch it without --seed, --seed-index and --dry-run, or pack it with reimage pack --chunks`);
  await dropOtherManifest(out, t.bytes);
  // The index on hand from a finished earlier fetch: nothing is brought again. Else a delta made against an
  // index the machine holds brings the index and the chunks it carries; else the index comes.
  const onHand = await indexOnHand(out, c);
  const d = onHand ? undefined : deltaFor(c, o.seeds);
  // A dry run says what the delta costs without bringing it (the index comes, as without one).
  const viaDelta = d && !o.dryRun ? await bringDelta(r, out, c, d, o.seeds, o.log) : undefined;
  // Then the small files the manifest names (never the compressed image).
  const small = [...(viaDelta || onHand ? [] : [indexTransfer(c)]), ...bundleFiles(t.manifest).slice(1)];
  let fetched = 0;
  for (const f of small) fetched += (await r.bring(f.name, join(out, f.name), f.expect, () => {})).fetched;
  const index = viaDelta?.index ?? onHand ?? (await readBroughtIndex(out, c, r.where));
  const report = await assemble({
    index,
    out: join(out, ASSEMBLED_FILE),
    seeds: viaDelta ? [viaDelta.seed, ...o.seeds] : o.seeds,
    source: await storeOf(spec, r, c.store, o),
    sha256: t.manifest.raw.sha256,
    dryRun: o.dryRun,
    ...(o.signal ? { signal: o.signal } : {}),
    info: o.log.info,
  });
  if (!o.dryRun) {
    // One image in DIR: a compressed one left by an earlier plain fetch goes (loadBundle would prefer it).
    if (t.manifest.image.file !== ASSEMBLED_FILE) for (const f of ['', '.part', '.part.json']) await rm(join(out, `${t.manifest.image.file}${f}`), { force: true });
    // What a delta left (its chunks, a partial file a fallback did not need) goes: DIR is a bundle.
    for (const x of t.manifest.chunks?.deltas ?? []) await dropDelta(out, x);
    await writeTrusted(out, t);
    // Read back as any bundle is: the signature over the written bytes, the assembled image's size.
    await loadBundle(out, [...o.trusted]);
  }
  if (d && (viaDelta || o.dryRun)) report.delta = { file: d.file, from: d.from, bytes: d.size };
  return { report, ...(t.signedBy ? { signedBy: t.signedBy } : {}), index: viaDelta ? 0 : indexTransfer(c).expect.size, fetched };
}

// storeOf: the bundle's chunk store where R found the bundle: a URL below it, or a local directory.
export async function storeOf(spec: string, r: Reader, store: string | undefined, o: Pick<SeededOptions, 'net' | 'log' | 'cleanup' | 'retries' | 'jobs'>): Promise<ChunkSource> {
  if (!store) throw bundleError(`bundle ${r.where} names no chunk store inside it: pack it with reimage pack --chunks (the store in the bundle directory)`);
  if (r.local) return dirSource(join((await stat(r.local).catch(() => undefined))?.isFile() ? dirname(r.local) : r.local, store), o.jobs);
  if (!isUrl(spec)) throw usageError(`--seed needs a bundle URL (https://…) or directory, not ${spec}`);
  const net = await loadNetOptions(o.net);
  o.cleanup.push('close the chunk store connections', async () => {
    net.https.destroy();
    net.http.destroy();
  });
  return httpChunkSource(new URL(`${store}/`, baseUrl(spec)), { net, log: o.log, retries: o.retries ?? o.net.retries ?? DEFAULT_RETRIES, parallel: o.jobs });
}
