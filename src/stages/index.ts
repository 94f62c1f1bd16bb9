// The flow: preflight -> scan -> stage -> keep -> point of no return ->
// write -> settle -> restore -> finish. `plan` runs every check up to the
// point of no return (reading, never writing) and reports what would happen.
// The flow owns the phase: whatever fails, phase.ts picks the exit by whether
// the point of no return was passed, so no step can report "nothing written"
// after writing.
import { verifyPacked, verifyRaw } from '../bundle/verify.ts';
import { ReimageError } from '../errors.ts';
import { checkImageTable } from '../image/head.ts';
import { describeDisk, refuseBusy } from '../target/check.ts';
import { human } from '../util/bytes.ts';
import { createCleanup } from '../util/cleanup.ts';
import { withProgress } from '../util/progress.ts';
import { checkpoint } from '../util/interrupt.ts';
import type { Log } from '../util/log.ts';
import type { Ctx, RunOptions } from './context.ts';
import { finish, REPORT_DIR } from './finish.ts';
import { dropKept, keepReport, keepRetained } from './keep.ts';
import { phaseError } from './phase.ts';
import { preflight } from './preflight.ts';
import { proofFor } from './proof.ts';
import { buildReport, confirmQuestion, planFacts } from './report.ts';
import { restore } from './restore.ts';
import { settle } from './settle.ts';
import { scanOld, stage } from './stage.ts';
import { write } from './write.ts';

export type Report = ReturnType<typeof buildReport>;

export async function runFlow(o: RunOptions, log: Log, planOnly: boolean): Promise<Report> {
  const ctx: Ctx = { o, log, cleanup: createCleanup(log), runDir: '', started: new Date(), timings: [], notes: [], keep: o.keep, saved: [], planOnly };
  // Each stage starts only if no signal came (long stages also check inside).
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    checkpoint(o.signal);
    const t0 = Date.now();
    log.info(`== ${name}`);
    ctx.phase = name;
    const v = await fn();
    ctx.timings.push({ stage: name, seconds: (Date.now() - t0) / 1000 });
    return v;
  };
  let passed = false;
  try {
    await timed('preflight', () => preflight(ctx));
    await timed('scan', () => scanOld(ctx));
    const proof = proofFor(ctx.bundle!, o.verifyRaw);
    ctx.proof = proof.text;
    log.info(`proof before writing: ${proof.text}`);
    if (planOnly) {
      const m = ctx.bundle!.manifest;
      await timed('verify', () =>
        proof.decodeFirst
          ? withProgress('decoding', m.raw.size, log, (tick) => verifyRaw(ctx.bundle!.imagePath, m, ctx.bundle!.bmap, o.signal, tick))
          : withProgress('checking', m.image.size, log, (tick) => verifyPacked(ctx.bundle!.imagePath, m, tick)),
      );
      await checkImageTable(ctx.bundle!.imagePath, ctx.bundle!.manifest);
      await ctx.oldUmount?.();
      const kept = ctx.resumed ? `restoring the ${ctx.resumed.archive.entries.length} entries saved in ${ctx.resumed.archive.from}` : `keeping ${ctx.scan!.found.length} entries`;
      log.info(`plan: ${describeDisk(ctx.disk!)} would be replaced by ${human(ctx.bundle!.manifest.raw.size)} image, ${kept}; nothing was written`);
      return buildReport(ctx, 'planned', undefined, await planFacts(ctx));
    }
    await confirm(ctx);
    await timed('stage', () => stage(ctx));
    await timed('keep', () => keepRetained(ctx));
    const d = ctx.disk!;
    // Staging may have taken a while: the last look before anything is written.
    await refuseBusy(d);
    await ctx.o.beforeWrite?.();
    checkpoint(o.signal);
    passed = true;
    log.info(`=== point of no return: replacing everything on ${describeDisk(d)} ===`);
    await timed('write', () => write(ctx));
    const parts = await timed('settle', () => settle(ctx));
    await timed('restore', () => restore(ctx, parts));
    const report = await timed('finish', () => finish(ctx));
    const total = (Date.now() - ctx.started.getTime()) / 1000;
    const w = ctx.wrote!;
    const entries = ctx.entries ?? [];
    log.info(
      `reimaged ${d.node} (${d.model || 'no model'}, serial ${d.serial || 'none'}) with ${human(w.bytes)} (${human(w.written)} written) in ${total.toFixed(1)} s ` +
        `(write ${(w.bytes / 2 ** 20 / Math.max(w.seconds, 0.001)).toFixed(0)} MiB/s), sha256 ok, ${entries.filter((e) => e.outcome === 'restored').length}/${entries.length} entries restored`,
    );
    if (report.outcome !== 'success') throw new ReimageError('afterWrite', `the image was written but some retained entries could not be restored: see ${REPORT_DIR}/report.json in the new system`);
    await dropKept(ctx);
    return report;
  } catch (e) {
    const err = phaseError(e, { passed, node: ctx.disk?.node, signal: o.signal, saved: ctx.saved, entries: ctx.captured?.length ?? 0 });
    if (err instanceof ReimageError) {
      err.report = buildReport(ctx, passed ? 'failed' : 'refused', { message: err.message, code: err.code });
      if (passed) await keepReport(ctx, err.report);
    }
    throw err;
  } finally {
    await ctx.cleanup.runAll();
  }
}

async function confirm(ctx: Ctx): Promise<void> {
  if (ctx.o.yes) return;
  ctx.phase = 'confirm';
  const d = ctx.disk!;
  if (!(await ctx.o.confirm(confirmQuestion(ctx, describeDisk(d))))) throw new ReimageError('cancelled', `not confirmed: nothing was written to ${d.node}`);
}
