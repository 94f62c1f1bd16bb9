// Scanning the old system for a retention list: globs expanded, directories
// walked, every match lstat'ed (never followed). Required entries that are
// missing and file types that cannot be retained (FIFOs, sockets, devices)
// are refused here, before anything is staged or written.
import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { retentionError } from '../errors.ts';
import { display, fromBuffer, human, toBuffer, type BPath } from '../util/bytes.ts';
import { join, resolveParent } from './inroot.ts';
import type { Component, ListEntry } from './list.ts';

export type Kind = 'file' | 'dir' | 'symlink';

export type Found = { path: BPath; host: BPath; kind: Kind; st: BigIntStats; line: number };

export type Scan = { found: Found[]; missingOptional: ListEntry[]; bytes: number };

const kindOf = (st: BigIntStats): Kind | string =>
  st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isBlockDevice() ? 'a block device' : st.isCharacterDevice() ? 'a character device' : 'an unknown file type';

async function stat(host: BPath): Promise<BigIntStats | undefined> {
  return lstat(toBuffer(host), { bigint: true }).catch(() => undefined);
}

// matches: the in-root paths an entry names on the old system.
async function matches(root: string, comps: Component[]): Promise<BPath[]> {
  let bases: BPath[] = ['' as BPath];
  for (const c of comps) {
    const next: BPath[] = [];
    for (const base of bases) {
      if ('literal' in c) {
        next.push(`${base}/${c.literal}` as BPath);
        continue;
      }
      const dir = base ? await resolveParent(root, `${base}/x` as BPath) : { hostDir: join(root, '/' as BPath) };
      const names = await readdir(toBuffer(dir.hostDir), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
      for (const n of names.map(fromBuffer).sort()) if (c.glob.test(n)) next.push(`${base}/${n}` as BPath);
    }
    bases = next;
  }
  return bases;
}

// Caps on what may be retained: a retention list that names a 40 GiB log
// directory must fail before writing, not fill the RAM stage.
export type Caps = { entryBytes: number; totalBytes: number };
export const DEFAULT_CAPS: Caps = { entryBytes: 256 * 2 ** 20, totalBytes: 1024 * 2 ** 20 };

export async function scan(root: string, entries: ListEntry[], caps: Caps = DEFAULT_CAPS): Promise<Scan> {
  const seen = new Set<string>();
  const found: Found[] = [];
  const missingOptional: ListEntry[] = [];
  let bytes = 0;
  const add = async (path: BPath, host: BPath, st: BigIntStats, e: ListEntry) => {
    const kind = kindOf(st);
    if (kind !== 'file' && kind !== 'dir' && kind !== 'symlink') {
      throw retentionError(`retained path ${display(path)} (list line ${e.line}) is ${kind}: only files, directories and symbolic links can be retained; remove it from the list`);
    }
    if (seen.has(path)) return;
    seen.add(path);
    found.push({ path, host, kind, st, line: e.line });
    if (kind === 'file') {
      const size = Number(st.size);
      if (size > caps.entryBytes) {
        throw retentionError(`retained file ${display(path)} (list line ${e.line}) is ${human(size)}, over the per-file cap of ${human(caps.entryBytes)}: remove it from the list or raise the cap (--max-entry-size)`);
      }
      bytes += size;
      if (bytes > caps.totalBytes) {
        throw retentionError(`the retained files reach ${human(bytes)} at ${display(path)} (list line ${e.line}), over the total cap of ${human(caps.totalBytes)}: retain less or raise the cap (--max-retained)`);
      }
    }
    if (kind !== 'dir') return;
    const names = await readdir(toBuffer(host), { encoding: 'buffer' });
    for (const n of names.map(fromBuffer).sort()) {
      const childHost = `${host}/${n}` as BPath;
      const cst = await stat(childHost);
      if (cst) await add(`${path}/${n}` as BPath, childHost, cst, e);
    }
  };
  for (const e of entries) {
    let hits = 0;
    for (const path of await matches(root, e.components)) {
      const { hostDir, name } = await resolveParent(root, path);
      const host = `${hostDir}/${name}` as BPath;
      const st = await stat(host);
      if (!st) continue;
      hits++;
      await add(path, host, st, e);
    }
    if (hits > 0) continue;
    if (!e.optional) {
      throw retentionError(`required retained entry ${e.text} (list line ${e.line}) is missing on the old system: restore it there, or mark the line optional with a leading ?`);
    }
    missingOptional.push(e);
  }
  return { found, missingOptional, bytes };
}
