// finish: the log and the JSON report written into the new system at
// /var/log/reimage/ (resolved inside the new root), a chunked bundle's index
// at /var/lib/reimage/last.caibx, the report sent to the fleet (or kept in the
// new system's outbox), then everything unmounted and synced.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeInRoot } from '../retention/inroot.ts';
import { KEPT_INDEX } from '../bundle/chunked.ts';
import { syncAll } from '../system/tools.ts';
import { EXIT } from '../errors.ts';
import type { BPath } from '../util/bytes.ts';
import type { Restored, Run, Trail } from './context.ts';
import { buildReport, type Report } from './report.ts';
import { deliver } from './outcome.ts';

export const REPORT_DIR = '/var/log/reimage';

// finish: the report decided by the entries (a partial one fails the run),
// written with the log into the new system; then unmount (what that did to
// LVM volume groups is logged: it comes after the report) and sync.
export async function finish(run: Run, restored: Restored, t: Trail): Promise<Report> {
  const { log } = run;
  // A partial entry (its bytes back, some metadata not) is not back: the run fails and the saved set stays.
  const failed = restored.entries.some((e) => e.outcome === 'failed' || e.outcome === 'partial');
  const report = buildReport(t, failed ? 'failed' : 'success', failed ? { message: 'some retained entries could not be restored', code: EXIT.afterWrite } : undefined);
  await keepIndex(run, restored, t);
  // In-root, and renamed over the name: a symlink the image has there is replaced, not followed.
  await writeInRoot(restored.root, `${REPORT_DIR}/report.json` as BPath, JSON.stringify(report, null, 2) + '\n', 0o644);
  log.info(`report written to ${REPORT_DIR}/report.json in the new system`);
  await writeInRoot(restored.root, `${REPORT_DIR}/reimage.log` as BPath, log.lines().join('\n') + '\n', 0o644);
  // Sent while the new system is mounted, so a report the endpoint does not take is kept there for its next boot.
  await deliver(run.o.deliver, report, log, restored.root);
  // The new system's volume groups are taken down after the report is written: said on the console instead.
  const before = t.notes.length;
  await restored.unmount();
  for (const n of t.notes.slice(before)) log.info(`${n} (the new system, before the reboot)`);
  await syncAll(run.sys);
  return report;
}

// keepIndex: a chunked bundle's index kept in the new system (KEPT_INDEX), so
// the next update seeds from it without chunking the whole disk. Not kept
// when it cannot be read: the next update chunks the disk instead.
async function keepIndex(run: Run, restored: Restored, t: Trail): Promise<void> {
  const b = t.pre?.bundle;
  const c = b?.manifest.chunks;
  if (!b || !c) return;
  const bytes = await readFile(join(b.dir, c.index.file)).catch(() => undefined);
  if (!bytes) return run.log.warn(`the chunk index ${c.index.file} is not in ${b.dir}: none kept, the next update chunks the whole disk`);
  await writeInRoot(restored.root, KEPT_INDEX as BPath, bytes, 0o644);
  run.log.info(`chunk index kept at ${KEPT_INDEX} in the new system (the next update seeds from it)`);
}
