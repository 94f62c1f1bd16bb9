// The phase rule, enforced in one place: whatever error leaves the flow, the
// flow (not the code that threw) decides its exit code by where the run was.
// Before the point of no return nothing was written: the exit is below 10
// (a signal there is "cancelled", 7). After it the disk was written: the exit
// is 10 or above (10 when the disk was invalidated, else 11), and the message
// says where the retained set was saved and that running the same command
// again finishes the job.
// The point of no return is a value: pointOfNoReturn is the only maker of a
// Passed, and every stage that writes takes one, so none can run before it.
import type { BootKit } from './bootkit.ts';
import type { Bundle } from '../bundle/read.ts';
import { describe, EXIT, ReimageError } from '../errors.ts';
import type { Captured } from '../retention/capture.ts';
import { describeDisk, refuseBusy } from '../target/check.ts';
import type { Disk } from '../target/sysfs.ts';
import type { KeptPart } from '../target/kept.ts';
import { checkpoint, Interrupted } from '../util/interrupt.ts';
import type { Ids, Run } from './context.ts';

declare const passedMark: unique symbol;

// Proof that the point of no return was passed, with what the writing stages need.
export type Passed = {
  readonly [passedMark]: true;
  disk: Disk;
  bundle: Bundle;
  // The proven image in RAM, the captured entries and the old system's users and groups.
  image: string;
  captured: Captured[];
  ids: Ids;
  // Partitions whose bytes are never written and which the new table carries again.
  kept: KeptPart[];
  // The power-loss boot kit, when the bundle's kept partition holds one (bootkit.ts).
  kit?: BootKit;
};

// pointOfNoReturn: the last look at the disk (staging may have taken a while),
// the caller's hook, the last signal check, then the loud line.
export async function pointOfNoReturn(run: Run, at: Omit<Passed, typeof passedMark>): Promise<Passed> {
  await refuseBusy(at.disk, run.sys);
  await run.o.beforeWrite?.();
  checkpoint(run.o.signal);
  run.log.info(`=== point of no return: replacing everything on ${describeDisk(at.disk)} ===`);
  return at as Passed;
}

export type Where = {
  // Whether the point of no return was passed.
  passed: boolean;
  node?: string;
  signal?: AbortSignal;
  // Where the retained set was saved before writing, and how many entries it holds.
  saved: readonly { where: string; survivesReboot: boolean }[];
  entries: number;
};

// phaseError: E as the error the flow ends with, given WHERE it was.
export function phaseError(e: unknown, at: Where): ReimageError | unknown {
  const sig = at.signal?.aborted ? String(at.signal.reason) : e instanceof Interrupted ? e.signalName : undefined;
  const disk = at.node ?? 'the target';
  if (!at.passed) {
    // A tool killed by the same Ctrl-C fails with its own error: the signal is the cause.
    if (sig) return new ReimageError('cancelled', `interrupted by ${sig} before the point of no return: nothing was written to ${disk}; run reimage again when ready`, { signal: sig });
    if (e instanceof ReimageError && e.code >= EXIT.writeFailed) {
      return new ReimageError('internal', `${e.message} (raised before the point of no return: nothing was written to ${disk})`, e.facts);
    }
    return e;
  }
  const base = e instanceof ReimageError && e.code >= EXIT.writeFailed ? e : undefined;
  const line = sig && !base ? `interrupted by ${sig} after the point of no return` : describe(e).line;
  const err = new ReimageError(base?.exit ?? 'afterWrite', `${line}; ${finishHint(at)}`, { ...(e instanceof ReimageError ? e.facts : {}), ...(sig ? { signal: sig } : {}) });
  err.cause = e;
  return err;
}

// finishHint: what a technician does next, after the point of no return.
export function finishHint(at: Pick<Where, 'saved' | 'entries'>): string {
  if (at.entries === 0) return 'run the same command again to finish';
  const lasting = at.saved.filter((s) => s.survivesReboot).map((s) => s.where);
  const any = at.saved.map((s) => s.where);
  if (lasting.length) return `the ${at.entries} retained entries are saved in ${lasting.join(' and ')}: run the same command again to finish (it restores them from there)`;
  if (any.length) return `the ${at.entries} retained entries are saved only in RAM (${any.join(' and ')}): run the same command again before rebooting to finish`;
  return `the ${at.entries} retained entries could not be saved before writing: restore them from a backup`;
}
