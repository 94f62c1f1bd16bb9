// The JSON status report: per-stage timings, hashes, device identity and every
// retained entry's outcome. Written into the new system by finish, printed by
// --json.
import { display } from '../util/bytes.ts';
import { VERSION } from '../version.ts';
import type { Ctx } from './context.ts';

// refused: stopped before the point of no return (nothing written); failed: stopped after it.
export type Outcome = 'success' | 'failed' | 'planned' | 'refused';

export function buildReport(ctx: Ctx, outcome: Outcome, error?: { message: string; code: number }) {
  const m = ctx.bundle?.manifest;
  const d = ctx.disk;
  return {
    tool: 'reimage',
    version: VERSION,
    outcome,
    ...(error ? { error } : {}),
    started: ctx.started.toISOString(),
    finished: new Date().toISOString(),
    stages: ctx.timings,
    bundle: m
      ? {
          dir: ctx.bundle!.dir,
          version: m.version,
          compatible: m.compatible,
          signedBy: ctx.bundle!.signedBy,
          codec: m.image.codec,
          image: { size: m.image.size, sha256: m.image.sha256 },
          raw: { size: m.raw.size, sha256: m.raw.sha256 },
          created: m.created,
        }
      : undefined,
    device: d ? { node: d.node, given: d.path, model: d.model, serial: d.serial, wwn: d.wwn, size: d.size, sectorSize: d.sectorSize, backingFile: d.backingFile || undefined } : undefined,
    write: ctx.wrote,
    retention: ctx.list ? { list: ctx.list.name, lines: ctx.list.entries.length } : undefined,
    proof: ctx.proof,
    retainedSaved: ctx.saved.map((s) => s.where),
    restoredFrom: ctx.resumed?.archive.from,
    entries: [
      ...(ctx.entries ?? notRestored(ctx, outcome, error)),
      ...(ctx.scan?.missingOptional ?? []).map((e) => ({ path: e.text.replace(/^\?\s*/, ''), line: e.line, outcome: 'missing-optional' as const })),
      ...(ctx.scan?.skipped ?? []).map((k) => ({ path: display(k.path), line: k.line, outcome: 'skipped' as const, reason: `${k.kind}: special files are not retained` })),
    ],
    planned: outcome === 'planned' ? ctx.scan?.found.map((f) => ({ path: display(f.path), kind: f.kind, line: f.line })) : undefined,
    notes: ctx.notes,
  };
}

// notRestored: after a failure past the point of no return that came before
// the restore, every captured entry, each saying why it is not back yet.
function notRestored(ctx: Ctx, outcome: Outcome, error?: { message: string }) {
  if (outcome !== 'failed') return [];
  return (ctx.captured ?? []).map((c) => ({
    path: display(c.path),
    kind: c.kind,
    line: c.line,
    outcome: 'not-restored' as const,
    notes: [`the run stopped before restoring it (${error?.message ?? 'failure'}); it is in the saved retained set`],
  }));
}
