// `reimage assemble`: the raw image of a chunked bundle, built from seeds
// (files or block devices already on the machine, or a kept index and the
// file it describes) and a chunk store for the rest; --dry-run says what it
// would cost before it costs it. The report's lines and JSON come from here.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { loadChunked } from '../bundle/chunked.ts';
import { loadTrusted } from '../bundle/sign.ts';
import { type AssembleReport, assemble } from '../chunks/assemble.ts';
import { indexSeed, type Seed } from '../chunks/plan.ts';
import { dirSource } from '../chunks/store.ts';
import { usageError } from '../errors.ts';
import { human } from '../util/bytes.ts';
import { catchSignals } from '../util/interrupt.ts';
import type { Log } from '../util/log.ts';

export type AssembleArgs = { bundle: string; out: string; store?: string; seeds: string[]; seedIndexes: string[]; trust: string[]; jobs?: number; dryRun: boolean };

// seedsFrom: --seed PATH and --seed-index INDEX:FILE, each checked readable now.
export async function seedsFrom(paths: readonly string[], indexed: readonly string[]): Promise<Seed[]> {
  const seeds: Seed[] = [];
  for (const p of paths) {
    const st = await stat(p).catch(() => undefined);
    if (!st || !(st.isFile() || st.isBlockDevice())) throw usageError(`seed ${p} is not a readable file or block device: give an old image, disk or partition`);
    seeds.push({ kind: 'file', path: p });
  }
  for (const spec of indexed) {
    const cut = spec.indexOf(':');
    if (cut <= 0) throw usageError(`--seed-index ${spec} is not INDEX:FILE: give the .caibx and the file it describes, e.g. --seed-index /var/lib/reimage/last.caibx:/dev/sda`);
    const [file, path] = [spec.slice(0, cut), spec.slice(cut + 1)];
    const bytes = await readFile(file).catch(() => undefined);
    if (!bytes) throw usageError(`seed index ${file} cannot be read: check the path`);
    const seed = indexSeed(bytes, path);
    if (typeof seed === 'string') throw usageError(`seed index ${file} ${seed}: give an index made by reimage pack --chunks or casync make`);
    if (!(await stat(path).catch(() => undefined))) throw usageError(`seed ${path} (of --seed-index) cannot be read: check the path`);
    seeds.push(seed);
  }
  return seeds;
}

// assembleCommand: run it; returns the report and its summary line.
export async function assembleCommand(a: AssembleArgs, log: Log): Promise<{ report: AssembleReport; line: string }> {
  const b = await loadChunked(a.bundle, await loadTrusted(a.trust));
  const storeDir = a.store ?? b.storeDir;
  if (storeDir && /^[a-z]+:\/\//i.test(storeDir)) throw usageError(`--store ${storeDir}: only a local directory is supported here yet; use reimage fetch for a URL`);
  const st = await stat(a.out).catch(() => undefined);
  if (st && !st.isFile()) throw usageError(`--out ${a.out} is not a regular file: assemble writes the raw image into a file (a device is written by reimage run)`);
  const mark = `${a.out}.reimage-assemble`;
  const sha = b.manifest.raw.sha256;
  // FILE is never truncated (a rerun resumes or finds it done), so a non-empty
  // one must be an assembly of this image: FILE.reimage-assemble, written
  // before the first byte and kept, names its raw sha256.
  if (st && st.size > 0 && (await readFile(mark, 'utf8').catch(() => undefined)) !== `${sha}\n`) {
    throw usageError(
      `--out ${a.out} already holds ${st.size} bytes that reimage assemble did not start for this image (no ${mark} naming raw sha256 ${sha.slice(0, 12)}…): give a new path, or remove the file; nothing was written`,
    );
  }
  const seeds = await seedsFrom(a.seeds, a.seedIndexes);
  if (!a.dryRun) {
    await writeFile(mark, `${sha}\n`).catch((e: NodeJS.ErrnoException) => {
      throw usageError(`--out ${a.out}: ${mark} cannot be written (${e.code ?? e.message}): give a path in a writable directory`);
    });
  }
  const signals = catchSignals(log.warn);
  try {
    const report = await log.step(a.dryRun ? 'plan the assembly' : `assemble ${a.out}`, () =>
      assemble({
        index: b.index,
        out: a.out,
        seeds,
        ...(storeDir ? { source: dirSource(storeDir, a.jobs ?? 8) } : {}),
        sha256: b.manifest.raw.sha256,
        dryRun: a.dryRun,
        signal: signals.signal,
        info: log.info,
      }),
    );
    const line = describeAssembly(report, a.out, a.dryRun, log);
    return { report, line };
  } finally {
    signals.dispose();
  }
}

// describeAssembly: one info line per seed, and the summary line (what came from where, what was or would be downloaded).
export function describeAssembly(report: AssembleReport, out: string, dryRun: boolean, log: Log): string {
  for (const s of report.seeds) {
    const err = s.error ? `, stopped: ${s.error}` : '';
    log.info(`seed ${s.name}: ${s.chunks} chunks, ${human(s.bytes)} (chunked ${human(s.scanned)} in ${s.seconds.toFixed(1)} s)${s.stale ? `, ${s.stale} no longer matched` : ''}${err}`);
  }
  const m = report.missing;
  const wire = dryRun ? (m.wire !== undefined ? `, ${human(m.wire)} to download` : '') : `, downloaded ${human(report.fetched.wire)}`;
  const d = report.delta;
  const delta = d
    ? dryRun
      ? `; the delta ${d.file} (${human(d.bytes)}) would come instead of the index and the missing chunks its release lacks`
      : `; through the delta ${d.file} (${human(d.bytes)})`
    : '';
  return `${dryRun ? 'would assemble' : 'assembled'} ${out}: ${report.chunks} chunks, ${human(report.size)}; in place ${report.inPlace.chunks}, zeros ${report.zero.chunks}, from seeds ${report.seeds.reduce((n, s) => n + s.chunks, 0)}, ${dryRun ? 'missing' : 'fetched'} ${dryRun ? m.chunks : report.fetched.chunks} (${human(dryRun ? m.bytes : report.fetched.bytes)} raw${wire})${delta}${report.sha256 ? ', sha256 ok' : ''}`;
}
