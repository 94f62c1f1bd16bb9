// The flow: preflight -> scan -> stage -> keep -> point of no return ->
// write -> settle -> restore -> finish. `plan` is its first half: every check
// up to the point of no return (reading, never writing), then a report of
// what would happen. Each stage takes the results of the ones before it and
// returns its own (context.ts); the writing stages take the Passed value only
// pointOfNoReturn makes. The flow owns the phase: whatever fails, phase.ts
// picks the exit by whether that value exists, so no step can report
// "nothing written" after writing.
import { verifyPacked, verifyRaw } from '../bundle/verify.ts';
import { EXIT, ReimageError } from '../errors.ts';
import { checkImageTable } from '../image/head.ts';
import { describeDisk } from '../target/check.ts';
import { human } from '../util/bytes.ts';
import { createCleanup } from '../util/cleanup.ts';
import { checkpoint } from '../util/interrupt.ts';
import { withProgress } from '../util/progress.ts';
import type { Log } from '../util/log.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import type { Preflight, Run, RunOptions, Scanned, Trail } from './context.ts';
import { bootEntry } from './efi.ts';
import { kitDone, loadKit, restoreBootCode } from './bootkit.ts';
import { finish, REPORT_DIR } from './finish.ts';
import { markPassed } from './kept.ts';
import { markDone } from './reentry.ts';
import { dropKept, keepReport, keepRetained } from './keep.ts';
import { type Passed, phaseError, pointOfNoReturn } from './phase.ts';
import { openRun, preflight } from './preflight.ts';
import { proofFor } from './proof.ts';
import { buildReport, confirmQuestion, planFacts, type Report } from './report.ts';
import { restore } from './restore.ts';
import { settle } from './settle.ts';
import { scanOld, stage } from './stage.ts';
import { write } from './write.ts';

export type { Report } from './report.ts';

// runFlow: the whole flow (or its first half for plan) on SYS, the host's OS unless a test gives another.
export async function runFlow(o: RunOptions, log: Log, planOnly: boolean, sys: Sys = hostSys): Promise<Report> {
  const cleanup = createCleanup(log);
  const t: Trail = { command: planOnly ? 'plan' : 'run', started: new Date(), timings: [], notes: [], saved: [], ...(o.assembly ? { assembly: o.assembly } : {}) };
  // Each stage starts only if no signal came (long stages also check inside).
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    checkpoint(o.signal);
    const t0 = Date.now();
    log.info(`== ${name}`);
    t.phase = name;
    const v = await fn();
    t.timings.push({ stage: name, seconds: (Date.now() - t0) / 1000 });
    return v;
  };
  let passed: Passed | undefined;
  try {
    const run = await openRun(o, log, cleanup, sys, t.command, t.notes);
    const pre = await timed('preflight', () => preflight(run));
    t.pre = pre;
    if (pre.reentry) t.notes.push(`re-entry: attempt ${pre.reentry.record.attempt + 1}; retained entries from ${pre.reentry.resumed.archive.from} (record ${pre.reentry.where})`);
    const scanned = await timed('scan', () => scanOld(run, pre));
    t.scanned = scanned;
    const { resumed } = scanned;
    if (resumed) t.notes.push(`retained entries restored from ${resumed.archive.from} (saved ${resumed.archive.created} by an interrupted run)`);
    const proof = proofFor(pre.bundle, o.verifyRaw);
    t.proof = proof.text;
    log.info(`proof before writing: ${proof.text}`);
    if (planOnly) {
      // The power-loss boot path is checked as the run would (it only reads).
      if (o.bundlePart && pre.kept.length) await loadKit(run, pre.disk, o.bundlePart, pre.kept);
      const { imagePath, manifest, bmap } = pre.bundle;
      await timed('verify', () =>
        proof.decodeFirst
          ? withProgress('decoding', manifest.raw.size, log, (tick) => verifyRaw(imagePath, manifest, bmap, o.signal, tick))
          : withProgress('checking', manifest.image.size, log, (tick) => verifyPacked(imagePath, manifest, tick)),
      );
      return await plan(run, pre, scanned, t);
    }

    await confirm(o, pre, scanned, t);
    const staged = await timed('stage', () => stage(run, pre, scanned, proof));
    t.staged = staged;
    t.saved = await timed('keep', () => keepRetained(run, pre, scanned, staged));
    // The power-loss boot path, checked on the disk before anything is written (stages/bootkit.ts).
    const kit = o.bundlePart && pre.kept.length ? await loadKit(run, pre.disk, o.bundlePart, pre.kept) : undefined;
    const p = await pointOfNoReturn(run, { disk: pre.disk, bundle: pre.bundle, image: staged.image, captured: staged.captured, ids: scanned.ids, kept: pre.kept, ...(kit ? { kit } : {}) });
    passed = p;
    await markPassed(run, pre, t.saved, new Date(), (pre.reentry?.record.attempt ?? 0) + 1);

    const wrote = await timed('write', () => write(run, p));
    t.wrote = wrote;
    const parts = await timed('settle', () => settle(run, p));
    const restored = await timed('restore', () => restore(run, p, parts));
    t.restored = restored;
    // Every entry is back: the kit's firmware entry goes before the image's own is made.
    const complete = restored.entries.every((e) => e.outcome === 'restored');
    if (p.kit && complete) await kitDone(run, p.kit);
    // A restore that is not complete leaves the kit's entry first: the next start re-enters (as LBA 0 does for BIOS).
    if (o.efiEntry && p.kit?.uefi && !complete) t.efi = { outcome: 'skipped', reason: "the restore is not complete: the boot kit's entry stays first and the next start re-enters", removed: [] };
    else if (o.efiEntry) t.efi = await timed('boot entry', () => bootEntry(run, p, pre.oldParts, parts));
    const report = await timed('finish', () => finish(run, restored, t));
    const total = (Date.now() - t.started.getTime()) / 1000;
    const d = p.disk;
    const entries = restored.entries;
    log.info(
      `reimaged ${d.node} (${d.model || 'no model'}, serial ${d.serial || 'none'}) with ${human(wrote.bytes)} (${human(wrote.written)} written) in ${total.toFixed(1)} s ` +
        `(write ${(wrote.bytes / 2 ** 20 / Math.max(wrote.seconds, 0.001)).toFixed(0)} MiB/s), sha256 ok, ${entries.filter((e) => e.outcome === 'restored').length}/${entries.length} entries restored`,
    );
    if (report.outcome !== 'success') throw new ReimageError('afterWrite', `the image was written but some retained entries could not be restored: see ${REPORT_DIR}/report.json in the new system`);
    // Every entry is back: the image's own boot code now, then the record is done.
    if (p.kit) await restoreBootCode(p.disk.node, p.kit);
    await markDone(pre.keep.places, pre.keep.key, log);
    await dropKept(log, pre.keep, t.saved, resumed);
    return report;
  } catch (e) {
    // A re-entry run works on a disk an earlier run already wrote: every failure is "written" (10+).
    const reentered = t.pre?.reentry !== undefined || (e instanceof ReimageError && e.facts['reentry'] === true);
    const own = reentered && !passed && e instanceof ReimageError && e.code >= EXIT.writeFailed;
    const err = own ? e : phaseError(e, { passed: passed !== undefined || reentered, node: t.pre?.disk.node, signal: o.signal, saved: t.saved, entries: t.staged?.captured.length ?? 0 });
    if (err instanceof ReimageError) {
      // A re-entry's refusal (its archive, its attempts) comes after an earlier run wrote the disk: failed, never refused.
      err.report = buildReport(t, passed || reentered ? 'failed' : 'refused', { message: err.message, code: err.code });
      if (passed && t.pre) await keepReport(log, t.pre.keep, t.saved, err.report);
    }
    throw err;
  } finally {
    await cleanup.runAll();
  }
}

// plan: after the image was proven in place (reading only), what would happen.
async function plan(run: Run, pre: Preflight, scanned: Scanned, t: Trail): Promise<Report> {
  const { bundle, disk } = pre;
  const { imagePath, manifest } = bundle;
  await checkImageTable(imagePath, manifest);
  await scanned.unmount();
  const { resumed } = scanned;
  const kept = resumed ? `restoring the ${resumed.archive.entries.length} entries saved in ${resumed.archive.from}` : `keeping ${scanned.scan.found.length} entries`;
  run.log.info(`plan: ${describeDisk(disk)} would be replaced by ${human(manifest.raw.size)} image, ${kept}; nothing was written`);
  return buildReport(t, 'planned', undefined, await planFacts(run.o, t));
}

// confirm: unless --yes, the operator types "yes" to the disk and its partitions.
async function confirm(o: RunOptions, pre: Preflight, scanned: Scanned, t: Trail): Promise<void> {
  if (o.yes) return;
  t.phase = 'confirm';
  const d = pre.disk;
  if (!(await o.confirm(confirmQuestion(pre, scanned, describeDisk(d))))) throw new ReimageError('cancelled', `not confirmed: nothing was written to ${d.node}`);
}
