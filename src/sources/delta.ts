// A chunked bundle brought through a delta file (chunks/delta.ts) when one of
// the machine's seeds is an index of the release the delta was made against
// (the kept /var/lib/reimage/last.caibx, or --seed-index): the delta comes
// instead of the index and of the chunks it carries — one download, resumed
// like any bundle file, checked against its signed size and sha256 before it
// is decompressed. Decoded, it gives the bundle's index (checked against the
// signed plain index's size and sha256, written beside the manifest as that
// file) and a seed of the chunks it carries (DELTA_DATA, each chunk hashed
// against its id when the assembly takes it, like any seed's). A delta that
// does not decode to the signed index is warned about and the index and store
// are used as without one (so is a delta missing or damaged on the server):
// never a wrong byte.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countOfSize, formatIndex, type ChunkIndex } from '../chunks/caibx.ts';
import { signedIndex } from '../bundle/chunked.ts';
import { decodeDelta } from '../chunks/delta.ts';
import type { Seed } from '../chunks/plan.ts';
import type { Chunks } from '../bundle/manifest.ts';
import { ReimageError } from '../errors.ts';
import { human } from '../util/bytes.ts';
import type { Log } from '../util/log.ts';
import type { Brought, Reader } from './types.ts';

// The chunks a delta carries, as a seed file beside the bundle being brought.
export const DELTA_DATA = 'delta.chunks';

type Delta = NonNullable<Chunks['deltas']>[number];

// deltaFor: the bundle's delta made against the index one of SEEDS is (by its sha256), or undefined.
export function deltaFor(c: Chunks, seeds: readonly Seed[]): Delta | undefined {
  const have = new Set(seeds.flatMap((s) => (s.kind === 'index' && s.sha256 ? [s.sha256] : [])));
  return c.deltas?.find((d) => have.has(d.from));
}

// bringDelta: delta D of the bundle R, downloaded as FILE and decoded into DIR
// against the seed it was made for; the bundle's index and the seed of its
// chunks, or undefined (after a warning) when it does not give the signed
// index back. A partial file left by a failed transfer stays beside FILE for
// the next run to resume. FILE is in DIR for a fetch (dropDelta removes it
// with the delta's chunks once the image is whole), or in a run's chunk cache
// (named by its sha256: deltas of two releases against one old index share a
// name), where the whole file also outlives a run interrupted before its
// point of no return, and a plan, like the chunks (sources/cache.ts).
export async function bringDelta(r: Reader, dir: string, c: Chunks, d: Delta, seeds: readonly Seed[], log: Log, file = join(dir, d.file)): Promise<{ index: ChunkIndex; seed: Seed } | undefined> {
  const old = seeds.find((s) => s.kind === 'index' && s.sha256 === d.from);
  if (old?.kind !== 'index') return undefined;
  const fallBack = async (why: string) => {
    log.warn(`the delta ${d.file} from ${r.where} ${why}: the index and the chunk store are used instead`);
    await rm(file, { force: true });
    return undefined;
  };
  let got: Brought;
  try {
    got = await r.bring(d.file, file, { sha256: d.sha256, size: d.size }, () => {});
  } catch (e) {
    // Missing or damaged on the server, or the link down: the index and the store serve, as without a delta.
    if (!(e instanceof ReimageError) || !['bundle', 'source'].includes(e.exit)) throw e;
    log.warn(`the delta ${d.file} could not be brought from ${r.where} (${e.message}): the index and the chunk store are used instead`);
    return undefined;
  }
  log.info(`delta ${d.file} against the index of ${old.path} (${human(d.size)}${got.fetched < d.size ? `, ${human(d.size - got.fetched)} already on hand` : ''})`);
  // The index it must give has a known number of chunks: nothing larger is decoded.
  const chunks = countOfSize(c.index.size);
  let decoded: ReturnType<typeof decodeDelta>;
  let bytes: Buffer;
  try {
    decoded = decodeDelta(await readFile(file), d.raw, old.index, chunks);
    if (typeof decoded === 'string') return await fallBack(decoded);
    bytes = formatIndex(decoded.index);
  } catch (e) {
    return await fallBack(`cannot be decoded (${(e as Error).message})`);
  }
  // The index as the plain path reads it: the signed bytes, then the same checks (digest, chunk sizes).
  const index = signedIndex(bytes, c);
  if (!('ends' in index)) return await fallBack(`gives an index that ${index.why}`);
  await writeFile(join(dir, c.index.file), bytes);
  await writeFile(join(dir, DELTA_DATA), decoded.data);
  return { index, seed: { kind: 'index', path: join(dir, DELTA_DATA), index: decoded.dataIndex } };
}

// dropDelta: what D left in DIR (the file, a partial one, its chunks), once the image is assembled.
export async function dropDelta(dir: string, d: Delta | undefined): Promise<void> {
  if (!d) return;
  for (const f of [d.file, `${d.file}.part`, `${d.file}.part.json`, DELTA_DATA]) await rm(join(dir, f), { force: true });
}

// indexOnHand: the bundle's index when DIR already holds it as signed (a
// finished earlier fetch): nothing, delta or index, is brought again.
export async function indexOnHand(dir: string, c: Chunks): Promise<ChunkIndex | undefined> {
  const b = await readFile(join(dir, c.index.file)).catch(() => undefined);
  const x = b && signedIndex(b, c);
  return x && 'ends' in x ? x : undefined;
}
