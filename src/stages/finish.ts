// finish: the log and the JSON report written into the new system at
// /var/log/reimage/ (resolved inside the new root), then everything unmounted
// and synced.
import { writeInRoot } from '../retention/inroot.ts';
import { syncAll } from '../system/tools.ts';
import { EXIT } from '../errors.ts';
import type { BPath } from '../util/bytes.ts';
import type { Ctx } from './context.ts';
import { buildReport } from './report.ts';

export const REPORT_DIR = '/var/log/reimage';

export async function finish(ctx: Ctx): Promise<ReturnType<typeof buildReport>> {
  const { log } = ctx;
  // A partial entry (its bytes back, some metadata not) is not back: the run fails and the saved set stays.
  const failed = (ctx.entries ?? []).some((e) => e.outcome === 'failed' || e.outcome === 'partial');
  const report = buildReport(ctx, failed ? 'failed' : 'success', failed ? { message: 'some retained entries could not be restored', code: EXIT.afterWrite } : undefined);
  if (ctx.newRoot) {
    // In-root, and renamed over the name: a symlink the image has there is replaced, not followed.
    await writeInRoot(ctx.newRoot, `${REPORT_DIR}/report.json` as BPath, JSON.stringify(report, null, 2) + '\n', 0o644);
    log.info(`report written to ${REPORT_DIR}/report.json in the new system`);
    await writeInRoot(ctx.newRoot, `${REPORT_DIR}/reimage.log` as BPath, log.lines().join('\n') + '\n', 0o644);
    await ctx.newUmount?.();
  }
  await syncAll();
  return report;
}
