// Scanning the old system for a retention list: globs expanded, directories
// walked, every match lstat'ed (never followed). Nothing is skipped silently:
// an error reading an entry or anything below it refuses the run (naming the
// entry, the list line and the errno); a FIFO, socket or device found while
// walking a directory is skipped and *reported* (an unprivileged user must not
// be able to veto a reimage by dropping one into a retained directory), while
// one the list names itself is refused. Hard links (same dev and inode) are
// noted so they are captured once and restored linked; sparse files are
// noted so they stay sparse.
import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { retentionError } from '../errors.ts';
import { display, fromBuffer, human, toBuffer, type BPath } from '../util/bytes.ts';
import { join, resolveParent } from './inroot.ts';
import type { Component, ListEntry } from './list.ts';
import { readFailed } from './refuse.ts';

export type Kind = 'file' | 'dir' | 'symlink';

// linkOf: an earlier found path with the same (dev, ino); sparse: fewer blocks allocated than the size needs.
export type Found = { path: BPath; host: BPath; kind: Kind; st: BigIntStats; line: number; linkOf?: BPath; sparse: boolean };

// A special file met while walking a directory: left out, and said so in the log and the report.
export type Skipped = { path: BPath; line: number; kind: string };

// bytes: apparent size of the files (each inode once); allocated: what they occupy on disk (st_blocks * 512).
export type Scan = { found: Found[]; missingOptional: ListEntry[]; skipped: Skipped[]; bytes: number; allocated: number };

export const emptyScan = (): Scan => ({ found: [], missingOptional: [], skipped: [], bytes: 0, allocated: 0 });

const kindOf = (st: BigIntStats): Kind | string =>
  st.isFile()
    ? 'file'
    : st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isFIFO()
          ? 'a FIFO'
          : st.isSocket()
            ? 'a socket'
            : st.isBlockDevice()
              ? 'a block device'
              : st.isCharacterDevice()
                ? 'a character device'
                : 'an unknown file type';

// Not there: the entry is missing (required -> refused, optional -> reported), not unreadable.
const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

// held: the bytes a file occupies in the RAM stage (a sparse one only its allocated blocks).
export const held = (f: { st: BigIntStats; sparse: boolean }) => (f.sparse ? Number(f.st.blocks) * 512 : Number(f.st.size));

// Caps on what may be retained: a retention list that names a 40 GiB log
// directory, or a million small files, must fail before writing, not fill the RAM stage.
export type Caps = { entryBytes: number; totalBytes: number; entries: number };
export const DEFAULT_CAPS: Caps = { entryBytes: 256 * 2 ** 20, totalBytes: 1024 * 2 ** 20, entries: 100_000 };

// matches: the in-root paths an entry names on the old system.
async function matches(root: string, e: ListEntry): Promise<BPath[]> {
  let bases: BPath[] = ['' as BPath];
  for (const c of e.components as Component[]) {
    const next: BPath[] = [];
    for (const base of bases) {
      if ('literal' in c) {
        next.push(`${base}/${c.literal}` as BPath);
        continue;
      }
      const dir = base ? await resolveParent(root, `${base}/x` as BPath) : { hostDir: join(root, '/' as BPath) };
      const names = await readdir(toBuffer(dir.hostDir), { encoding: 'buffer' }).catch((err: NodeJS.ErrnoException) => {
        if (ABSENT.has(err.code ?? '')) return [] as Buffer[];
        throw readFailed('readdir', (base || '/') as BPath, e.line, err);
      });
      for (const n of names.map(fromBuffer).sort()) if (c.glob.test(n)) next.push(`${base}/${n}` as BPath);
    }
    bases = next;
  }
  return bases;
}

export async function scan(root: string, entries: ListEntry[], caps: Caps = DEFAULT_CAPS): Promise<Scan> {
  const seen = new Set<string>();
  const inodes = new Map<string, BPath>();
  const out = emptyScan();
  let total = 0;
  const add = async (path: BPath, host: BPath, st: BigIntStats, e: ListEntry, top: boolean) => {
    const kind = kindOf(st);
    if (kind !== 'file' && kind !== 'dir' && kind !== 'symlink') {
      if (!top) {
        if (!seen.has(path)) out.skipped.push({ path, line: e.line, kind });
        seen.add(path);
        return;
      }
      throw retentionError(`retained path ${display(path)} (list line ${e.line}) is ${kind}: only files, directories and symbolic links can be retained; remove it from the list`);
    }
    if (seen.has(path)) return;
    seen.add(path);
    if (out.found.length >= caps.entries) {
      throw retentionError(
        `the retention list reaches more than ${caps.entries} entries at ${display(path)} (list line ${e.line}), over the cap on the number of entries: retain less or raise the cap (--max-entries)`,
        { cap: caps.entries },
      );
    }
    const f: Found = { path, host, kind, st, line: e.line, sparse: kind === 'file' && st.blocks * 512n < st.size };
    const key = `${st.dev}:${st.ino}`;
    const first = kind === 'file' && st.nlink > 1n ? inodes.get(key) : undefined;
    if (first !== undefined) f.linkOf = first;
    else if (kind === 'file' && st.nlink > 1n) inodes.set(key, path);
    out.found.push(f);
    if (kind === 'file' && first === undefined) {
      const size = held(f);
      if (size > caps.entryBytes) {
        throw retentionError(
          `retained file ${display(path)} (list line ${e.line}) is ${human(size)}, over the per-file cap of ${human(caps.entryBytes)}: remove it from the list or raise the cap (--max-entry-size)`,
        );
      }
      out.bytes += Number(st.size);
      out.allocated += Number(st.blocks) * 512;
      total += size;
      if (total > caps.totalBytes) {
        throw retentionError(
          `the retained files reach ${human(total)} at ${display(path)} (list line ${e.line}), over the total cap of ${human(caps.totalBytes)}: retain less or raise the cap (--max-retained)`,
        );
      }
    }
    if (kind !== 'dir') return;
    const names = await readdir(toBuffer(host), { encoding: 'buffer' }).catch((err: NodeJS.ErrnoException) => {
      throw readFailed('readdir', path, e.line, err);
    });
    for (const n of names.map(fromBuffer).sort()) {
      const child = `${path}/${n}` as BPath;
      const childHost = `${host}/${n}` as BPath;
      // Below a retained directory every error counts, ENOENT too: a child that vanished since readdir is not skipped.
      const cst = await lstat(toBuffer(childHost), { bigint: true }).catch((err: NodeJS.ErrnoException) => {
        throw readFailed('lstat', child, e.line, err);
      });
      await add(child, childHost, cst, e, false);
    }
  };
  for (const e of entries) {
    let hits = 0;
    for (const path of await matches(root, e)) {
      const { hostDir, name } = await resolveParent(root, path);
      const host = `${hostDir}/${name}` as BPath;
      const st = await lstat(toBuffer(host), { bigint: true }).catch((err: NodeJS.ErrnoException) => {
        if (ABSENT.has(err.code ?? '')) return undefined;
        throw readFailed('lstat', path, e.line, err);
      });
      if (!st) continue;
      hits++;
      await add(path, host, st, e, true);
    }
    if (hits > 0) continue;
    if (!e.optional) {
      throw retentionError(`required retained entry ${e.text} (list line ${e.line}) is missing on the old system: restore it there, or mark the line optional with a leading ?`);
    }
    out.missingOptional.push(e);
  }
  return out;
}
