// The text of `reimage plan`: what the run would do, rendered from the plan's
// report (src/stages/report.ts) alone, for an 80-column serial console: the
// disk, its partitions now and after, both mount plans, every retained entry
// (kept, optional and missing, skipped and why), the bytes to write and how
// they are proven, the RAM needed and available, the disk's unused end.
import type { CompactReport } from '../chunks/compact.ts';
import type { PlanFacts } from '../stages/report.ts';
import { human } from '../util/bytes.ts';
import { wrap } from './help.ts';

// The parts of the report the plan reads (a structural subset of Report).
export type PlanReport = {
  device?: { node: string; model: string; serial: string; size: number; sectorSize: number; backingFile?: string | undefined } | undefined;
  bundle?: { dir: string; version?: string | undefined; codec: string; raw: { size: number }; signedBy?: string | undefined } | undefined;
  retention?: { list: string; lines: number } | undefined;
  restoredFrom?: string | undefined;
  entries: readonly { path: string; line?: number; outcome: string; reason?: string; kind?: string }[];
  planned?: readonly { path: string; kind: string; line: number }[] | undefined;
  plan?: PlanFacts | undefined;
  // A chunked bundle URL assembled from seeds (sources/assembled.ts).
  assembly?: Pick<CompactReport, 'chunks' | 'size' | 'zero' | 'seeds' | 'missing' | 'fetched' | 'cached' | 'image'> | undefined;
};

const row = (text: string): string[] => wrap(text, '  ', 4);

// renderPlan: REPORT as the plan's text (lines of at most 80 columns, ending with a newline).
export function renderPlan(r: PlanReport): string {
  const d = r.device;
  const p = r.plan;
  const out: string[] = [];
  const head = (t: string) => out.push('', t);
  out.push(...wrap(`plan: ${d ? d.node : 'the target'} would be replaced${r.bundle ? ` by the ${human(r.bundle.raw.size)} image of ${r.bundle.dir}` : ''}; nothing was written`, '', 2));
  if (d) {
    head('disk');
    out.push(
      ...row(`${d.node}: ${d.model || (d.backingFile ? `loop of ${d.backingFile}` : 'no model')}, serial ${d.serial || 'none'}, ${human(d.size)} (${d.size} bytes), ${d.sectorSize}-byte sectors`),
    );
  }
  if (p) {
    head(p.partitionsNow.some((x) => x.kept) ? 'partitions now (all replaced but the kept ones)' : 'partitions now (all replaced)');
    if (!p.partitionsNow.length) out.push('  (none: no partition table, or it is not read)');
    for (const x of p.partitionsNow) out.push(...row(`${x.node}  ${x.fstype ?? '-'}  ${x.label ?? x.partlabel ?? ''}${x.kept ? '  (kept)' : ''}`.trimEnd()));
    head('partitions after');
    for (const x of p.partitionsAfter)
      out.push(...row(`${x.number}  at ${human(x.start)}, ${human(x.size)}  ${x.fstype ?? '-'}  ${x.label ?? x.name ?? ''}${x.kept ? '  (kept, not written)' : ''}`.trimEnd()));
    head('mounts of the old system (where retained entries are read)');
    if (!p.mountsOld.length) out.push('  (none: nothing is read from the old system)');
    for (const m of p.mountsOld) out.push(...row(`${m.path.padEnd(12)} ${m.spec}`));
    head('mounts of the new system');
    for (const m of p.mountsNew) out.push(...row(`${m.path.padEnd(12)} ${m.spec} (partition ${m.partition}, ${m.fstype})`));
  }
  out.push(...entries(r));
  if (r.assembly) out.push(...chunkLines(r.assembly));
  if (p) {
    head('write');
    const mapped = p.write.mappedBytes < p.write.imageBytes ? `, ${human(p.write.mappedBytes)} of it data (the block map)` : '';
    out.push(...row(`${human(p.write.imageBytes)} image${mapped}${r.bundle ? `, ${r.bundle.codec}` : ''}`));
    out.push(...row(`proof: ${p.write.proof}`));
    head('RAM');
    const short = p.ram.need > p.ram.available;
    out.push(...row(`needs ${human(p.ram.need)}, ${human(p.ram.available)} available${short ? ': NOT ENOUGH, a run is refused (exit 6)' : ''}`));
    head('unused space');
    if (p.unused.bytes < 1 << 20) out.push('  none: the image fills the disk');
    else if (p.unused.grow) out.push(...row(`${human(p.unused.bytes)} past the image's end: --grow gives it to the last partition`));
    else out.push(...row(`${human(p.unused.bytes)} past the image's end stays unused: run with --grow to give it to the last partition`));
  }
  return `${out.join('\n')}\n`;
}

// entries: every retained entry the run would keep, and those it would not, and why.
function entries(r: PlanReport): string[] {
  const planned = r.planned ?? [];
  const missing = r.entries.filter((e) => e.outcome === 'missing-optional');
  const skipped = r.entries.filter((e) => e.outcome === 'skipped');
  const list = r.restoredFrom ? `the set saved in ${r.restoredFrom}` : (r.retention?.list ?? '(none)');
  const out = ['', ...wrap(`retained entries (${list}): ${planned.length} kept, ${missing.length} optional missing, ${skipped.length} skipped`, '', 2)];
  for (const e of planned) out.push(...wrap(`${e.path} (${e.kind}, line ${e.line})`, '  kept     ', 11));
  for (const e of missing) out.push(...wrap(`${e.path} (line ${e.line ?? '?'}: optional, not on the old system)`, '  missing  ', 11));
  for (const e of skipped) out.push(...wrap(`${e.path} (line ${e.line ?? '?'}: ${e.reason ?? 'skipped'})`, '  skipped  ', 11));
  if (!planned.length && !missing.length && !skipped.length) out.push('  (none: nothing of the old system is kept)');
  return out;
}

// chunkLines: where a chunked bundle's image came from: each seed, zeros, the chunks downloaded (as fetch --dry-run says it).
function chunkLines(a: NonNullable<PlanReport['assembly']>): string[] {
  const out = ['', ...wrap(`chunks (the image assembled from seeds, ${a.chunks} chunks, ${human(a.size)})`, '', 2)];
  for (const s of a.seeds)
    out.push(...row(`seed ${s.name}: ${s.chunks} chunks, ${human(s.bytes)}${s.stale ? ` (${s.stale} changed since, downloaded)` : ''}${s.error ? ` (unreadable: ${s.error})` : ''}`));
  out.push(...row(`zeros: ${a.zero.chunks} chunks, ${human(a.zero.bytes)}`));
  out.push(...row(`download: ${a.missing.chunks} chunks, ${human(a.missing.bytes)} raw; ${a.fetched.chunks} downloaded (${human(a.fetched.wire)} over the wire), ${a.cached.chunks} already on hand`));
  out.push(...row(`in RAM: ${human(a.image.size)} (seekable zstd)`));
  return out;
}
