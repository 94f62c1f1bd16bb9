// Whether the retained entries fit in the new file systems, checked before
// the point of no return against the free space pack recorded in the manifest.
// Each entry goes to the deepest mount of the new system that contains its
// path. A file needs its size rounded up to the file system's block size (a
// sparse file: what it has allocated), a directory or a long symlink one
// block, and every entry an inode. Replaced files of the new image are not
// counted as freed: the estimate errs on the side of refusing.
import type { Manifest, Mount } from '../bundle/manifest.ts';
import { retentionError } from '../errors.ts';
import type { Found } from '../retention/scan.ts';
import { display, fromUtf8, human } from '../util/bytes.ts';
import type { Log } from '../util/log.ts';

// ext4 keeps symlink targets shorter than 60 bytes in the inode itself.
const FAST_SYMLINK = 60;

// destination: the deepest mount of the new system whose path contains PATH.
export function destination(mounts: readonly Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const p = fromUtf8(m.path);
    const inside = p === '/' || path === p || path.startsWith(`${p}/`);
    if (inside && (!best || p.length > fromUtf8(best.path).length)) best = m;
  }
  return best;
}

const roundUp = (n: number, b: number) => Math.ceil(n / b) * b;

// entryBytes: what one entry takes on a file system with BLOCK-sized blocks.
export function entryBytes(f: Pick<Found, 'kind' | 'st'>, block: number): number {
  const size = Number(f.st.size);
  if (f.kind === 'dir') return block;
  if (f.kind === 'symlink') return size < FAST_SYMLINK ? 0 : block;
  // A sparse file (fewer blocks allocated than its size needs) takes what it has allocated.
  const allocated = Number(f.st.blocks) * 512;
  return roundUp(allocated < size ? allocated : size, block);
}

export type Need = { mount: Mount; bytes: number; inodes: number; freeBytes: number; freeInodes: number };

// fitCheck: per destination mount, the need against the recorded free space;
// SPARE adds room a partition gains from --grow. Mounts without recorded
// sizes (bundles made before pack recorded them, non-ext file systems) are returned in `unknown`.
export function fitCheck(m: Manifest, found: readonly Pick<Found, 'path' | 'kind' | 'st'>[], spare: (partition: number) => number = () => 0): { needs: Need[]; unknown: Mount[] } {
  const needs = new Map<Mount, Need>();
  const unknown = new Set<Mount>();
  for (const f of found) {
    const mount = destination(m.mounts, f.path);
    if (!mount) continue;
    const fs = m.table.partitions.find((p) => p.number === mount.partition)?.fs;
    if (!fs || fs.blockSize === undefined || fs.freeBytes === undefined || fs.freeInodes === undefined) {
      unknown.add(mount);
      continue;
    }
    const n = needs.get(mount) ?? { mount, bytes: 0, inodes: 0, freeBytes: fs.freeBytes + spare(mount.partition), freeInodes: fs.freeInodes };
    n.bytes += entryBytes(f, fs.blockSize);
    n.inodes += 1;
    needs.set(mount, n);
  }
  return { needs: [...needs.values()], unknown: [...unknown] };
}

// checkFit: refuse (exit 5) when the retained entries for a mount need more than its file system has free.
export function checkFit(m: Manifest, found: readonly Found[], log: Log, spare?: (partition: number) => number): void {
  const { needs, unknown } = fitCheck(m, found, spare);
  for (const u of unknown)
    log.info(
      `retention: the manifest records no free space for ${u.path} (partition ${u.partition}, bundle made before pack recorded it, or not ext2/3/4): not checked whether the retained entries fit`,
    );
  for (const n of needs) {
    const where = `the new system's ${n.mount.path} (partition ${n.mount.partition})`;
    if (n.bytes > n.freeBytes) {
      const big = found.filter((f) => destination(m.mounts, f.path) === n.mount).sort((a, b) => Number(b.st.size - a.st.size))[0];
      throw retentionError(
        `the retained entries for ${where} need ${human(n.bytes)} (${n.bytes} bytes${big ? `, the largest ${display(big.path)}` : ''}) but its file system has only ${human(n.freeBytes)} (${n.freeBytes} bytes) free: retain less there, or use an image with more room on that partition`,
        { mount: n.mount.path, need: n.bytes, free: n.freeBytes },
      );
    }
    if (n.inodes > n.freeInodes) {
      throw retentionError(
        `the retained entries for ${where} need ${n.inodes} inodes but its file system has only ${n.freeInodes} free: retain fewer entries there, or use an image with more inodes on that partition`,
        { mount: n.mount.path, need: n.inodes, free: n.freeInodes },
      );
    }
    log.info(`retention: ${human(n.bytes)} and ${n.inodes} inodes for ${n.mount.path}, ${human(n.freeBytes)} and ${n.freeInodes} inodes free there`);
  }
}

// growSpare: with --grow, the last partition's ext file system gains the disk's room beyond the image (less 1 MiB for the backup GPT).
export function growSpare(m: Manifest, diskBytes: number): (partition: number) => number {
  const last = [...m.table.partitions].sort((a, b) => b.start + b.size - (a.start + a.size))[0];
  const room = Math.max(0, diskBytes - m.raw.size - (1 << 20));
  return (n) => (last && n === last.number && last.fs.type?.startsWith('ext') ? room : 0);
}
