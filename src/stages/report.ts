// The JSON status report: per-stage timings, hashes, device identity and every
// retained entry's outcome. Written into the new system by finish, printed by
// --json.
import { display } from '../util/bytes.ts';
import { VERSION } from '../version.ts';
import type { Trail } from './context.ts';

// refused: stopped before the point of no return (nothing written); failed: stopped after it.
export type Outcome = 'success' | 'failed' | 'planned' | 'refused';

// buildReport: the report of a run that got as far as T.
export function buildReport(t: Trail, outcome: Outcome, error?: { message: string; code: number }) {
  const b = t.pre?.bundle;
  const m = b?.manifest;
  const d = t.pre?.disk;
  const scan = t.scanned?.scan;
  return {
    tool: 'reimage',
    version: VERSION,
    outcome,
    ...(error ? { error } : {}),
    started: t.started.toISOString(),
    finished: new Date().toISOString(),
    stages: t.timings,
    bundle:
      b && m
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
    restoredFrom: t.scanned?.resumed?.archive.from,
    entries: [
      ...(t.restored?.entries ?? notRestored(t, outcome, error)),
      ...(scan?.missingOptional ?? []).map((e) => ({ path: e.text.replace(/^\?\s*/, ''), line: e.line, outcome: 'missing-optional' as const })),
      ...(scan?.skipped ?? []).map((k) => ({ path: display(k.path), line: k.line, outcome: 'skipped' as const, reason: `${k.kind}: special files are not retained` })),
    ],
    planned: outcome === 'planned' ? scan?.found.map((f) => ({ path: display(f.path), kind: f.kind, line: f.line })) : undefined,
    notes: t.notes,
  };
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

export type Report = ReturnType<typeof buildReport>;
