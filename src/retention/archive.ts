// The retained set persisted before the first write, so that nothing is lost
// after the point of no return: a failure, a signal or a power cut during the
// write leaves the captured entries where they survive, and running the same
// command again restores them from there (the old system is gone by then).
//
// Format (reimage-retained/1), one directory per target disk, named by the
// disk's identity (see archiveKey), inside each keep place:
//   <place>/<key>/retained.json   what was captured: every entry's path (bytes
//                                 as latin1 code points), kind, mode, owner ids
//                                 and names, mtime in ns, symlink target,
//                                 xattrs (base64), notes; the old system's
//                                 passwd/group maps; the disk and bundle
//   <place>/<key>/data/<n>        the content of file entry n (holes kept)
// It is written under a temporary name, synced, and renamed into place, so a
// reader sees a whole archive or none.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, rmdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { Disk } from '../target/sysfs.ts';
import { copyBytes } from './sparse.ts';
import { constants } from 'node:fs';
import { retentionError } from '../errors.ts';
import { display } from '../util/bytes.ts';
import { hashFile } from '../util/hash.ts';
import { checkpoint } from '../util/interrupt.ts';
import type { Log } from '../util/log.ts';
import { VERSION } from '../version.ts';
import type { Captured } from './capture.ts';
import type { IdMap } from './ids.ts';

export const ARCHIVE_FORMAT = 'reimage-retained/1';
const INDEX = 'retained.json';

// A directory the archive can be written to: opened (a medium mounted) and closed around each use.
export type KeepPlace = {
  name: string;
  // Whether what is written there survives a reboot (a RAM directory does not).
  survivesReboot: boolean;
  // WRITE false: only looked at (a partition is then mounted read-only).
  open: (write?: boolean) => Promise<{ dir: string; close: () => Promise<void> }>;
  // A plain directory (dirPlace): where it is, so its file system can be looked at.
  path?: string;
  // The block device (a partition) the place is on, when it is a medium opened by reimage.
  device?: string;
};

// dirPlace: a plain directory as a keep place.
export const dirPlace = (dir: string, survivesReboot: boolean): KeepPlace => ({ name: dir, path: dir, survivesReboot, open: async () => ({ dir, close: async () => {} }) });

// RAM file systems (statfs f_type): a directory there does not survive a reboot.
const RAM_FS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

// inRam: whether PATH (or its nearest existing parent) lives on a RAM file system.
export async function inRam(path: string): Promise<boolean> {
  for (let p = path; ; p = dirname(p)) {
    const st = await statfs(p).catch(() => undefined);
    if (st) return RAM_FS.has(Number(st.type));
    if (p === dirname(p)) return false;
  }
}

export type ArchiveMeta = {
  disk: { serial: string; wwn: string; model: string; size: number; backingFile?: string };
  bundle: { rawSha256: string; version?: string };
  list: string;
};

export type Archive = ArchiveMeta & { created: string; entries: Captured[]; users: IdMap; groups: IdMap; from: string; dataDir: string };

// archiveKey: the directory name for a disk, stable across runs and reboots.
// Two disks of one model and size without serial or WWN share a key: the
// checks in stages/keep.ts (an intact other system, the list) still apply.
export function archiveKey(d: Pick<Disk, 'serial' | 'wwn' | 'size' | 'backingFile' | 'model'>): string {
  const id = d.serial || d.wwn || '';
  const sum = createHash('sha256')
    .update(JSON.stringify([d.serial, d.wwn, d.size, d.backingFile || '', d.model]))
    .digest('hex')
    .slice(0, 12);
  const readable = id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40);
  return `${readable || 'disk'}-${sum}`;
}

// bigint survives JSON as {"$bigint":"…"}; every other value as itself.
const replacer = (_k: string, v: unknown) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v);
const reviver = (_k: string, v: unknown) => (v && typeof v === 'object' && '$bigint' in v && typeof (v as { $bigint: unknown }).$bigint === 'string' ? BigInt((v as { $bigint: string }).$bigint) : v);

const Entry = z.looseObject({
  // A normalised absolute path (bytes as latin1): no empty, `.` or `..` component, so it cannot climb out of the root.
  path: z.string().refine(
    (p) =>
      p.startsWith('/') &&
      !p.includes('\0') &&
      p
        .split('/')
        .slice(1)
        .every((c) => c !== '' && c !== '.' && c !== '..'),
    'expected a normalised absolute path',
  ),
  kind: z.enum(['file', 'dir', 'symlink']),
  line: z.number().int(),
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().nonnegative(),
  gid: z.number().int().nonnegative(),
  user: z.string().optional(),
  group: z.string().optional(),
  mtimeNs: z.bigint(),
  size: z.number().int().nonnegative(),
  target: z.string().optional(),
  xattrs: z.array(z.strictObject({ name: z.string(), value: z.string() })),
  staged: z
    .string()
    .regex(/^data\/\d+$/)
    .optional(),
  // The sha256 of the staged bytes: checked when the set is loaded again.
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  notes: z.array(z.string()),
});
const Pairs = z.array(z.tuple([z.union([z.string(), z.number()]), z.union([z.string(), z.number()])]));
const Index = z.strictObject({
  format: z.literal(ARCHIVE_FORMAT),
  tool: z.string(),
  created: z.string(),
  disk: z.strictObject({ serial: z.string(), wwn: z.string(), model: z.string(), size: z.number(), backingFile: z.string().optional() }),
  bundle: z.strictObject({ rawSha256: z.string(), version: z.string().optional() }),
  list: z.string(),
  users: z.strictObject({ byName: Pairs, byId: Pairs }),
  groups: z.strictObject({ byName: Pairs, byId: Pairs }),
  entries: z.array(Entry),
});

const mapOut = (m: IdMap) => ({ byName: [...m.byName], byId: [...m.byId] });
const mapIn = (p: { byName: [string | number, string | number][]; byId: [string | number, string | number][] }): IdMap => ({
  byName: new Map(p.byName.map(([k, v]) => [String(k), Number(v)])),
  byId: new Map(p.byId.map(([k, v]) => [Number(k), String(v)])),
});

// saveArchive: the captured set written to every place that can take it;
// returns where it landed ("place/key"). A place that fails is warned about, not fatal.
export async function saveArchive(
  places: readonly KeepPlace[],
  key: string,
  entries: readonly Captured[],
  ids: { users: IdMap; groups: IdMap },
  meta: ArchiveMeta,
  log: Log,
  signal?: AbortSignal,
): Promise<{ where: string; survivesReboot: boolean }[]> {
  const saved: { where: string; survivesReboot: boolean }[] = [];
  await eachPlace(places, 'save the retained set', log, signal, async (dir, p) => {
    await writeOne(dir, key, entries, ids, meta, signal);
    saved.push({ where: join(p.name, key), survivesReboot: p.survivesReboot });
  });
  return saved;
}

async function writeOne(dir: string, key: string, entries: readonly Captured[], ids: { users: IdMap; groups: IdMap }, meta: ArchiveMeta, signal?: AbortSignal): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${key}.tmp-${process.pid}`);
  try {
    await writeTmp(dir, key, tmp, entries, ids, meta, signal);
  } catch (e) {
    // A half-written copy holds private keys too: it goes.
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

async function writeTmp(dir: string, key: string, tmp: string, entries: readonly Captured[], ids: { users: IdMap; groups: IdMap }, meta: ArchiveMeta, signal?: AbortSignal): Promise<void> {
  const final = join(dir, key);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'data'), { recursive: true, mode: 0o700 });
  const out = [];
  for (const [i, c] of entries.entries()) {
    checkpoint(signal);
    let staged: string | undefined;
    let sha256: string | undefined;
    if (c.staged) {
      staged = `data/${i}`;
      await copyFile(c, join(tmp, staged));
      sha256 = (await hashFile(c.staged)).sha256;
    }
    out.push({ ...c, staged, sha256 });
  }
  const index = { format: ARCHIVE_FORMAT, tool: `reimage ${VERSION}`, created: new Date().toISOString(), ...meta, users: mapOut(ids.users), groups: mapOut(ids.groups), entries: out };
  await writeFile(join(tmp, INDEX), JSON.stringify(index, replacer) + '\n', { mode: 0o600 });
  await syncPath(join(tmp, INDEX));
  await syncPath(join(tmp, 'data'));
  await syncPath(tmp);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await syncPath(dir);
}

// copyFile: a staged entry's bytes into a new file TO (holes kept for a sparse
// entry), synced. The source must be a regular file, never followed through a link.
async function copyFile(c: Captured, to: string): Promise<void> {
  const src = await open(c.staged!, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!(await src.stat()).isFile()) throw Object.assign(new Error(`${c.staged} is not a regular file`), { code: 'EINVAL' });
    const dst = await open(to, 'wx', 0o600);
    try {
      await copyBytes(src, dst, c.sparse === true, c.size);
      await dst.sync();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

// syncPath: fsync one file or directory.
export async function syncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// findArchive: the first place holding an archive for KEY, validated; its data
// stays where it is. A set that is there but unreadable refuses the run (exit
// 5): ignoring it would read a disk whose old system may be gone.
export async function findArchive(places: readonly KeepPlace[], key: string, log: Log): Promise<{ place: KeepPlace; archive: Archive } | undefined> {
  for (const p of places) {
    let opened: Awaited<ReturnType<KeepPlace['open']>> | undefined;
    let bad: Error | undefined;
    try {
      opened = await p.open(false);
      const archive = await readArchive(join(opened.dir, key)).catch((e: Error) => {
        // Nothing there (or a file where the directory would be): no set.
        if (!['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) bad = e;
        return undefined;
      });
      if (archive) return { place: p, archive: { ...archive, from: join(p.name, key) } };
    } catch (e) {
      log.warn(`could not look for a saved retained set in ${p.name}: ${(e as Error).message}`);
    } finally {
      await opened?.close().catch(() => {});
    }
    if (bad) {
      throw retentionError(`the saved retained set in ${join(p.name, key)} is unreadable (${bad.message}): nothing was written; restore it from a copy, or delete it to read the disk afresh`);
    }
  }
  return undefined;
}

// readArchive: an archive directory (the one holding retained.json), validated.
export async function readArchive(dir: string): Promise<Archive> {
  const text = await readFile(join(dir, INDEX), 'utf8');
  const parsed = Index.safeParse(JSON.parse(text, reviver));
  if (!parsed.success) throw new Error(`${join(dir, INDEX)} is not a ${ARCHIVE_FORMAT} index: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  const x = parsed.data;
  const entries = x.entries.map((e) => ({ ...e, ...(e.staged ? { staged: join(dir, e.staged) } : { staged: undefined }) }) as unknown as Captured);
  for (const e of entries) if (e.staged) await stat(e.staged);
  return { disk: x.disk, bundle: x.bundle, list: x.list, created: x.created, entries, users: mapIn(x.users), groups: mapIn(x.groups), from: dir, dataDir: join(dir, 'data') };
}

// loadArchiveData: the archive's file contents copied into the RAM stage (the place can then be released).
export async function loadArchiveData(place: KeepPlace, key: string, stageDir: string, signal?: AbortSignal): Promise<Captured[]> {
  const opened = await place.open(false);
  try {
    const a = await readArchive(join(opened.dir, key));
    const out: Captured[] = [];
    for (const [i, c] of a.entries.entries()) {
      if (!c.staged) {
        out.push(c);
        continue;
      }
      const to = join(stageDir, `saved-${i}`);
      checkpoint(signal);
      await copyFile(c, to).catch((e: NodeJS.ErrnoException) => {
        throw retentionError(
          `the saved retained set in ${join(place.name, key)}: the bytes of ${display(c.path)} cannot be read (${e.code ?? e.message}): delete the set to read the disk afresh, or restore it from a copy`,
        );
      });
      const got = (await hashFile(to)).sha256;
      const want = (c as Captured & { sha256?: string }).sha256;
      if (got !== want) {
        throw retentionError(
          `the saved retained set in ${join(place.name, key)}: the bytes of ${display(c.path)} have sha256 ${got}, not the ${want ?? '(none)'} recorded when it was saved: nothing was written; delete the set to read the disk afresh, or restore it from a copy`,
        );
      }
      out.push({ ...c, staged: to });
    }
    return out;
  } finally {
    await opened.close();
  }
}

// dropArchive: the archive for KEY removed from every place (after every entry came back).
export async function dropArchive(places: readonly KeepPlace[], key: string, log: Log): Promise<void> {
  await eachPlace(places, 'remove the saved retained set', log, undefined, async (dir) => {
    // Only a directory that is an archive is removed.
    if (!(await isArchive(join(dir, key)))) return;
    await rm(join(dir, key), { recursive: true, force: true });
    await syncPath(dir);
    // The keep directory itself goes too once it is empty (rmdir never removes anything else).
    await rmdir(dir).catch(() => {});
  });
}

// annotate: a file (a failure report) written next to the archive for KEY in every place that holds it.
export async function annotate(places: readonly KeepPlace[], key: string, name: string, text: string, log: Log): Promise<void> {
  await eachPlace(places, `write ${name}`, log, undefined, async (dir) => {
    if (!(await isArchive(join(dir, key)))) return;
    await writeFile(join(dir, key, name), text, { mode: 0o600 });
    await syncPath(join(dir, key, name));
  });
}

// eachPlace: FN on every place, opened and always closed; a place that fails is warned about (a signal still stops).
async function eachPlace(places: readonly KeepPlace[], what: string, log: Log, signal: AbortSignal | undefined, fn: (dir: string, p: KeepPlace) => Promise<void>): Promise<void> {
  for (const p of places) {
    let opened: Awaited<ReturnType<KeepPlace['open']>> | undefined;
    try {
      opened = await p.open();
      await fn(opened.dir, p);
    } catch (e) {
      checkpoint(signal);
      log.warn(`could not ${what} in ${p.name}: ${(e as Error).message}`);
    } finally {
      await opened?.close().catch((e: Error) => log.warn(`could not release ${p.name}: ${e.message}`));
    }
  }
}

// isArchive: whether DIR holds a saved set (its index).
const isArchive = (dir: string) =>
  stat(join(dir, INDEX)).then(
    () => true,
    () => false,
  );
