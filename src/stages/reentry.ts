// Power-loss re-entry. A run whose bundle is on a kept partition of the target
// writes, right after its point of no return, a record beside the retained set
// saved there (reentry.json): this bundle (its manifest's sha256), this disk,
// the archive and the sha256 of its index (which holds every file's sha256).
// A later run with the same bundle on the same disk finds it before reading
// anything of the old system (which may be half overwritten) and takes the
// retained set from the archive, writes again from the start, restores, and
// only then marks the record done. The record is replaced whole (temp file,
// fsync, rename, fsync of the directory), so a cut leaves the old or the new one.
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Bundle } from '../bundle/read.ts';
import { ReimageError } from '../errors.ts';
import { readArchive, syncPath, type Archive, type KeepPlace } from '../retention/archive.ts';
import type { Disk } from '../target/sysfs.ts';
import type { KeptPart } from '../target/kept.ts';
import type { Log } from '../util/log.ts';

export const REENTRY_FILE = 'reentry.json';
export const REENTRY_FORMAT = 'reimage-reentry/1';
// Runs past the point of no return one record allows: a disk that fails every
// time (or a cut that keeps coming) stops with the reason on the console
// instead of rewriting itself at every power-on.
export const REENTRY_ATTEMPTS = 10;
const INDEX = 'retained.json';

const Kept = z.object({ number: z.number().int(), start: z.number().int(), size: z.number().int(), type: z.string(), partuuid: z.string(), name: z.string().optional(), attrs: z.string().optional() });

const Record = z.object({
  format: z.literal(REENTRY_FORMAT),
  passed: z.string(),
  // Runs that passed the point of no return with this record (1 = the first).
  attempt: z.number().int().min(1).default(1),
  done: z.string().optional(),
  bundle: z.object({ location: z.string(), rawSha256: z.string(), manifestSha256: z.string().optional(), version: z.string().optional() }),
  archive: z.string(),
  archiveSha256: z.string().optional(),
  disk: z.object({ node: z.string(), serial: z.string().optional(), wwn: z.string().optional(), size: z.number() }),
  kept: z.array(Kept),
});
export type ReentryRecord = z.infer<typeof Record>;

// A re-entry found for this run: the record, where it is, and the archive beside it.
// resumed is the archive as stages/keep.ts restores it (context.ts Resumed).
export type Reentry = { record: ReentryRecord; where: string; place: KeepPlace; resumed: { place: KeepPlace; archive: Archive } };

// manifestSha256: the sha256 of the bundle's manifest.json as read (the signed bytes).
export const manifestSha256 = async (bundle: Pick<Bundle, 'dir'>): Promise<string> =>
  createHash('sha256')
    .update(await readFile(join(bundle.dir, 'manifest.json')))
    .digest('hex');

// findReentry: the record for BUNDLE on DISK in one of PLACES, with its archive
// checked against the record. A record for another bundle or disk, or one
// already done, is ignored with a warning; a matching record whose archive is
// missing or does not match is a refusal (exit 11: the disk was written), and
// so is a record that has used up its ATTEMPTS.
export async function findReentry(places: readonly KeepPlace[], key: string, bundle: Bundle, disk: Disk, log: Log, attempts = REENTRY_ATTEMPTS): Promise<Reentry | undefined> {
  const want = await manifestSha256(bundle);
  for (const p of places.filter((q) => q.survivesReboot)) {
    let opened: Awaited<ReturnType<KeepPlace['open']>> | undefined;
    try {
      opened = await p.open(false);
    } catch (e) {
      log.warn(`could not look for a re-entry record in ${p.name}: ${(e as Error).message}`);
      continue;
    }
    try {
      const at = join(opened.dir, key, REENTRY_FILE);
      const text = await readFile(at, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const where = join(p.name, key, REENTRY_FILE);
      let parsed: ReturnType<typeof Record.safeParse>;
      try {
        parsed = Record.safeParse(JSON.parse(text));
      } catch (e) {
        log.warn(`re-entry record ${where} is not JSON (${(e as Error).message}): ignored`);
        continue;
      }
      if (!parsed.success) {
        log.warn(`re-entry record ${where} is not a ${REENTRY_FORMAT} record (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}): ignored`);
        continue;
      }
      const r = parsed.data;
      if (r.done) continue;
      // A record from before manifestSha256 was recorded, or for another bundle (older or newer): not this job.
      if (r.bundle.manifestSha256 !== want) {
        log.warn(`re-entry record ${where} (passed ${r.passed}) is for another bundle (manifest sha256 ${r.bundle.manifestSha256 ?? 'not recorded'}, this one ${want}): ignored`);
        continue;
      }
      const same = r.disk.size === disk.size && (r.disk.serial ?? '') === (disk.serial ?? '') && (r.disk.wwn ?? '') === (disk.wwn ?? '') && r.archive === key;
      if (!same) {
        log.warn(`re-entry record ${where} is for another disk (serial ${r.disk.serial || 'none'}, ${r.disk.size} bytes, not ${disk.serial || 'none'}, ${disk.size} bytes): ignored`);
        continue;
      }
      const refuse = (why: string) =>
        new ReimageError(
          'afterWrite',
          `re-entry record ${where}: a run with this bundle passed its point of no return on ${r.passed}, but its archive ${join(p.name, key)} ${why}: nothing is restored from it and the disk was not written again; restore the archive from a copy, or delete ${REENTRY_FILE} and reimage without the old identity`,
          { reentry: true },
        );
      if (r.attempt >= attempts)
        throw new ReimageError(
          'afterWrite',
          `re-entry record ${where}: ${r.attempt} runs with this bundle passed the point of no return since ${r.passed} and none finished (the limit is ${attempts}, policy reentryAttempts): this run stops instead of writing again; the disk or its power may be failing: read the earlier logs, then reimage by hand (the retained set stays in ${join(p.name, key)}; delete ${REENTRY_FILE} to start over)`,
          { reentry: true },
        );
      const index = await readFile(join(opened.dir, key, INDEX)).catch(() => undefined);
      if (!index) throw refuse(`has no ${INDEX}`);
      const got = createHash('sha256').update(index).digest('hex');
      if (got !== r.archiveSha256) throw refuse(`index has sha256 ${got}, not the ${r.archiveSha256 ?? '(none)'} recorded`);
      const archive = await readArchive(join(opened.dir, key)).catch((e: Error) => {
        throw refuse(`is unreadable (${e.message})`);
      });
      log.warn(
        `re-entry: attempt ${r.attempt + 1} of a reimage with this bundle that passed its point of no return on ${r.passed}; the retained set comes from ${join(p.name, key)}, not from the disk`,
      );
      return { record: r, where, place: p, resumed: { place: p, archive: { ...archive, from: join(p.name, key) } } };
    } finally {
      await opened.close().catch(() => {});
    }
  }
  return undefined;
}

// keptFromRecord: the kept partitions as the record saw them (the disk's table may be half written now).
export function keptFromRecord(r: ReentryRecord, node: string, sectorSize: number): KeptPart[] {
  return r.kept.map((k) => ({
    number: k.number,
    node: `${node}${/\d$/.test(node) ? 'p' : ''}${k.number}`,
    start: k.start,
    size: k.size,
    type: k.type,
    uuid: k.partuuid,
    ...(k.name ? { name: k.name } : {}),
    ...(k.attrs ? { attrs: k.attrs } : {}),
    bytes: [k.start * sectorSize, (k.start + k.size) * sectorSize] as [number, number],
    why: ['the re-entry record'],
  }));
}

// writeRecord: RECORD into DIR/KEY (beside the archive), replaced whole; the archive index's sha256 filled in.
export async function writeRecord(dir: string, key: string, record: Omit<ReentryRecord, 'archiveSha256'>): Promise<void> {
  const index = await readFile(join(dir, key, INDEX));
  const full = { ...record, archiveSha256: createHash('sha256').update(index).digest('hex') };
  const to = join(dir, key, REENTRY_FILE);
  await writeFile(`${to}.tmp`, JSON.stringify(full, null, 2) + '\n', { mode: 0o600 });
  await syncPath(`${to}.tmp`);
  await rename(`${to}.tmp`, to);
  await syncPath(join(dir, key));
}

// markDone: after every entry came back, each record for KEY in PLACES marked
// done (before the archive beside it is removed, so a cut never leaves a live
// record without its archive).
export async function markDone(places: readonly KeepPlace[], key: string, log: Log, now: Date = new Date()): Promise<void> {
  for (const p of places.filter((q) => q.survivesReboot)) {
    let opened: Awaited<ReturnType<KeepPlace['open']>> | undefined;
    try {
      opened = await p.open();
      const text = await readFile(join(opened.dir, key, REENTRY_FILE), 'utf8').catch(() => undefined);
      const r = text === undefined ? undefined : Record.safeParse(JSON.parse(text));
      if (r?.success) await writeRecord(opened.dir, key, { ...r.data, done: now.toISOString() });
    } catch (e) {
      log.warn(`could not mark the re-entry record in ${p.name} done: ${(e as Error).message}`);
    } finally {
      await opened?.close().catch(() => {});
    }
  }
}
