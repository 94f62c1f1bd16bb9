// The JSON status report: per-stage timings, hashes, device identity and every
// retained entry's outcome. Written into the new system by finish, printed by
// --json in the shape of src/cli/result.schema.json ("reimage-result/1":
// run and plan share it). A plan also carries `plan` (planFacts): what the
// run would do, from which src/cli/plan.ts renders the plan's text.
import { mappedBlocks } from '../bmap/format.ts';
import type { Manifest } from '../bundle/manifest.ts';
import { display } from '../util/bytes.ts';
import { VERSION } from '../version.ts';
import { budget, pageSize } from './budget.ts';
import type { Preflight, RunOptions, Scanned, Trail } from './context.ts';
import { oldPlan } from './mounts.ts';
import { memAvailable } from '../target/sysfs.ts';
import { keptNumbers } from '../target/kept.ts';
import { growBytes } from './kept.ts';

// refused: stopped before the point of no return (nothing written); failed: stopped after it.
export type Outcome = 'success' | 'failed' | 'planned' | 'refused';

export type ReportError = { message: string; code: number; name?: string; facts?: Record<string, unknown> };

// What a plan says the run would do (facts only; src/cli/plan.ts renders them).
export type PlanFacts = {
  // kept: never written, carried into the new table (stages/kept.ts).
  partitionsNow: { node: string; number: number; fstype?: string; label?: string; partlabel?: string; kept?: boolean }[];
  partitionsAfter: { number: number; start: number; size: number; name?: string; fstype?: string; label?: string; kept?: boolean }[];
  mountsOld: { path: string; spec: string }[];
  mountsNew: { path: string; spec: string; partition: number; fstype: string }[];
  write: { imageBytes: number; mappedBytes: number; proof: string };
  ram: { need: number; available: number };
  // Bytes of the disk past the image's end, and whether --grow would give them to the last partition.
  unused: { bytes: number; grow: boolean };
};

// buildReport: the report of a run that got as far as T.
export function buildReport(t: Trail, outcome: Outcome, error?: ReportError, plan?: PlanFacts) {
  const b = t.pre?.bundle;
  const m = b?.manifest;
  const d = t.pre?.disk;
  const scan = t.scanned?.scan;
  return {
    format: 'reimage-result/1' as const,
    command: t.command,
    outcome,
    exitCode: error?.code ?? 0,
    // The stage the run was in when it ended (finish on success, verify for a plan).
    phase: t.phase ?? 'preflight',
    written: outcome === 'success' || outcome === 'failed',
    tool: 'reimage',
    version: VERSION,
    ...(error ? { error } : {}),
    started: t.started.toISOString(),
    finished: new Date().toISOString(),
    stages: t.timings,
    ...(t.assembly ? { assembly: t.assembly } : {}),
    bundle:
      m && b
        ? {
            dir: b.dir,
            version: m.version,
            compatible: m.compatible,
            signedBy: b.signedBy,
            codec: m.image.codec,
            image: { size: m.image.size, sha256: m.image.sha256 },
            raw: { size: m.raw.size, sha256: m.raw.sha256 },
            created: m.created,
          }
        : undefined,
    device: d ? { node: d.node, given: d.path, model: d.model, serial: d.serial, wwn: d.wwn, size: d.size, sectorSize: d.sectorSize, backingFile: d.backingFile || undefined } : undefined,
    write: t.wrote,
    retention: t.pre ? { list: t.pre.list.name, lines: t.pre.list.entries.length } : undefined,
    proof: t.proof,
    retainedSaved: t.saved.map((s) => s.where),
    kept: t.pre?.kept.length ? keptFacts(t.pre) : undefined,
    restoredFrom: t.scanned?.resumed?.archive.from,
    reentry: t.pre?.reentry
      ? { attempt: t.pre.reentry.record.attempt + 1, firstPassed: t.pre.reentry.record.passed, record: t.pre.reentry.where, retainedFrom: t.pre.reentry.resumed.archive.from }
      : undefined,
    entries: [
      ...(t.restored?.entries ?? notRestored(t, outcome, error)),
      ...(scan?.missingOptional ?? []).map((e) => ({ path: e.text.replace(/^\?\s*/, ''), line: e.line, outcome: 'missing-optional' as const })),
      ...(scan?.skipped ?? []).map((k) => ({ path: display(k.path), line: k.line, outcome: 'skipped' as const, reason: `${k.kind}: special files are not retained` })),
    ],
    planned: outcome === 'planned' ? scan?.found.map((f) => ({ path: display(f.path), kind: f.kind, line: f.line })) : undefined,
    plan,
    efi: t.efi,
    notes: t.notes,
  };
}

// planFacts: what the run would do, from what preflight and the scan found
// (the partitions now and after, both mount plans, the bytes to write and how
// they are proven, the RAM the run needs and has, the disk's unused end).
export async function planFacts(o: RunOptions, t: Trail, available: () => Promise<number> = memAvailable, page?: number): Promise<PlanFacts | undefined> {
  if (!t.pre) return undefined;
  const { bundle: b, disk: d, keep, list } = t.pre;
  const m = b.manifest;
  const found = t.scanned?.scan.found ?? [];
  const need = budget(o.bundleInRam ? 0 : m.image.size, keep.places.some((p) => p.survivesReboot) ? found : [...found, ...found], page ?? (await pageSize())).need;
  const old = o.oldMounts.length || list.entries.length ? safeOldPlan(m, o.oldMounts) : [];
  // --grow gives the last partition (by its end) the disk's room past the image, less a MiB for the backup GPT.
  const last = [...m.table.partitions].sort((x, y) => y.start + y.size - (x.start + x.size))[0];
  const room = Math.max(0, growBytes(t.pre.kept, m.raw.size, d.size) - m.raw.size - (1 << 20));
  const kept = new Set(t.pre.kept.map((k) => k.number));
  const oldFs = new Map(t.pre.oldParts.map((p) => [p.number, p]));
  return {
    partitionsNow: t.pre.oldParts.map((p) => ({ node: p.node, number: p.number, fstype: p.fstype, label: p.label, partlabel: p.partlabel, ...(kept.has(p.number) ? { kept: true } : {}) })),
    partitionsAfter: [
      ...m.table.partitions.map((p) => ({
        number: p.number,
        start: p.start * m.table.sectorSize,
        size: p.size * m.table.sectorSize + (o.grow && p === last ? room : 0),
        name: p.name,
        fstype: p.fs?.type,
        label: p.fs?.label,
      })),
      ...keptFacts(t.pre).map((k) => ({ number: k.numberAfter, start: k.start, size: k.size, name: k.name, fstype: oldFs.get(k.number)?.fstype, label: oldFs.get(k.number)?.label, kept: true })),
    ].sort((x, y) => x.start - y.start),
    mountsOld: old.map((l) => ({ path: l.path, spec: `${l.kind}=${l.value}` })),
    mountsNew: m.mounts.map((x) => ({ path: x.path, spec: `${x.spec.kind}=${x.spec.value}`, partition: x.partition, fstype: x.fstype })),
    write: { imageBytes: m.raw.size, mappedBytes: b.bmap ? Math.min(m.raw.size, mappedBlocks(b.bmap) * b.bmap.blockSize) : m.raw.size, proof: t.proof ?? '' },
    ram: { need, available: await available() },
    unused: { bytes: Math.max(0, d.size - m.raw.size), grow: o.grow },
  };
}

// keptFacts: the kept partitions for the report: where they are (bytes), their identity, number now and after, and why.
export function keptFacts(pre: Pick<Preflight, 'kept' | 'bundle'>) {
  const numbers = keptNumbers(pre.kept, pre.bundle.manifest.table);
  return pre.kept.map((k) => ({
    node: k.node,
    number: k.number,
    numberAfter: numbers.get(k) ?? k.number,
    start: k.bytes[0],
    size: k.bytes[1] - k.bytes[0],
    type: k.type,
    partuuid: k.uuid,
    ...(k.name ? { name: k.name } : {}),
    ...(k.attrs ? { attrs: k.attrs } : {}),
    why: k.why,
  }));
}

function safeOldPlan(m: Manifest, oldMounts: readonly string[]) {
  try {
    return oldPlan(m, oldMounts);
  } catch {
    return [];
  }
}

// notRestored: after a failure past the point of no return that came before
// the restore, every captured entry, each saying why it is not back yet.
function notRestored(t: Trail, outcome: Outcome, error?: { message: string }) {
  if (outcome !== 'failed') return [];
  return (t.staged?.captured ?? []).map((c) => ({
    path: display(c.path),
    kind: c.kind,
    line: c.line,
    outcome: 'not-restored' as const,
    notes: [`the run stopped before restoring it (${error?.message ?? 'failure'}); it is in the saved retained set`],
  }));
}

// confirmQuestion: the confirmation a run asks on a terminal: the disk, the
// partitions that will be replaced (by name), and how many entries are kept.
export function confirmQuestion(pre: Preflight, scanned: Scanned, describeDisk: string): string {
  const keptNo = new Set(pre.kept.map((k) => k.number));
  const parts = pre.oldParts.filter((p) => !keptNo.has(p.number));
  const named = parts.map((p) => `${p.node}${p.label || p.partlabel ? ` (${p.label ?? p.partlabel})` : ''}`);
  const rows = parts.map((p) => `  ${p.node}  ${p.fstype ?? '-'}  ${p.label ?? p.partlabel ?? ''}`).join('\n');
  const n = scanned.resumed ? scanned.resumed.archive.entries.length : scanned.scan.found.length;
  const kept = n === 0 ? 'No retained entries will be kept (--no-retain).' : `${n} retained ${n === 1 ? 'entry' : 'entries'} from ${pre.list.name} will be kept.`;
  const keptLine = pre.kept.length ? `Kept, never written: ${pre.kept.map((k) => `${k.node}${k.name ? ` (${k.name})` : ''}`).join(', ')}.\n` : '';
  if (pre.bundle.manifest.layout) return factoryQuestion(pre, describeDisk) + `${kept}\n${retainedLines(scanned)}Type "yes" to continue: `;
  const what = pre.kept.length ? 'Everything but the kept partitions' : 'EVERYTHING';
  return (
    `\n${what} on ${describeDisk} will be destroyed and replaced.\n` + (rows ? `Partitions now on it:\n${rows}\nReplaced: ${named.join(', ')}.\n` : '') + keptLine + `${kept}\nType "yes" to continue: `
  );
}

// factoryQuestion: a factory reset (a captured bundle) says which partitions
// lose everything and which are kept exactly as they are (the recovery
// partition among them, so the reset can be done again).
function factoryQuestion(pre: Preflight, describeDisk: string): string {
  const keptNumbers = new Set(pre.kept.map((k) => k.number));
  const name = (p: { node: string; label?: string; partlabel?: string; name?: string }) => {
    const what = p.label ?? p.partlabel ?? p.name;
    return `${p.node}${what ? ` (${what})` : ''}`;
  };
  const lost = pre.oldParts.filter((p) => !keptNumbers.has(p.number)).map(name);
  return (
    `\nFACTORY RESET of ${describeDisk}: the system goes back to its factory state.\n` +
    `LOST (everything on them is replaced): ${lost.join(', ') || 'none'}.\n` +
    `KEPT as they are, never written: ${pre.kept.map(name).join(', ') || 'none'}.\n`
  );
}

// retainedLines: the retained entries by path (at most 20 named), for the factory reset's warning.
function retainedLines(scanned: Scanned): string {
  const found = scanned.resumed ? scanned.resumed.archive.entries.map((e) => display(e.path)) : scanned.scan.found.map((f) => display(f.path));
  if (!found.length) return '';
  const shown = found
    .slice(0, 20)
    .map((p) => `  kept: ${p}\n`)
    .join('');
  return shown + (found.length > 20 ? `  … and ${found.length - 20} more\n` : '');
}

export type Report = ReturnType<typeof buildReport>;
