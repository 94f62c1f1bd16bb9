// The RAM budget, in the units the kernel uses. The RAM stage is a tmpfs: it
// charges whole pages per file (a 1-byte file takes a page) and one inode per
// file, so it is sized in pages (nr_blocks=) and inodes (nr_inodes=), not in
// bytes. Beyond the stage, RAM holds the decoder (worker threads, each with
// frame slots: frames.ts), the kernel's memory for each staged inode plus our
// own record of each entry, and the runtime itself (HEADROOM, measured).
import { availableParallelism, endianness } from 'node:os';
import { readFile } from 'node:fs/promises';
import { FRAME } from '../codecs/seekable.ts';
import { ReimageError } from '../errors.ts';
import { held, type Found } from '../retention/scan.ts';
import { memAvailable } from '../target/sysfs.ts';
import { human } from '../util/bytes.ts';
import { MAX_WORKERS, slotsFor } from '../image/frames.ts';

// The runtime's own memory. Measured with `/usr/bin/time -v build/reimage run`
// (maximum resident set size) on the test fixtures (192 MiB image,
// kiosk.list, a loop target, 2 cores): `--help` alone 77 MiB; a gzip bundle
// (streamed, no decoder threads) 154 MiB; the zstd bundle (2 decoder threads,
// 6 frame slots: counted below, not here) 179 MiB; the same with 10,000
// one-byte entries 206 MiB (counted by ENTRY_BYTES). So 154 MiB, rounded up
// to 192 MiB for the tools we start (one at a time, a few MiB each) and
// run-to-run variation. The page cache is not counted: MemAvailable already
// counts it as reclaimable. (The old 128 MiB was below the measured peak.)
export const HEADROOM = 192 << 20;
// A decoder worker thread's own heap and stack (a V8 isolate), beyond its
// slots: generous, the measured difference above (25 MiB for 2 threads and
// their 48 MiB of slots) shows slots are not all resident at once.
export const WORKER_BYTES = 16 << 20;
// Per entry: our scan and capture records (measured: 27 MiB more peak RSS for
// 10,000 entries, 2.7 KiB each) and a tmpfs inode and dentry (~1 KiB in the kernel).
export const ENTRY_BYTES = 4 << 10;
// Slack in the stage for the image's rounding and for what pages and inodes cannot foresee.
const SPARE_PAGES_BYTES = 16 << 20;
const SPARE_INODES = 64;

export type Budget = {
  page: number;
  // The RAM stage's tmpfs: pages (nr_blocks) and inodes (nr_inodes).
  pages: number;
  inodes: number;
  imagePages: number;
  filePages: number;
  files: number;
  entries: number;
  workers: number;
  slots: number;
  decodeBytes: number;
  entryBytes: number;
  need: number;
};

// filePages: pages one staged file takes in tmpfs. A sparse file is staged
// without its holes: each allocated block of the old file lies in at most one
// page (blocks up to a page) or fills whole pages (larger blocks), so its
// pages are bounded by its allocated bytes over min(block size, page).
export function filePages(f: Pick<Found, 'st' | 'sparse'>, page: number): number {
  const size = Number(f.st.size);
  if (size === 0) return 0;
  const dense = Math.ceil(size / page);
  if (!f.sparse) return dense;
  const unit = Math.min(Number(f.st.blksize) || page, page);
  // At least one page: a file with inline data (ext4 inline_data, btrfs) has no blocks at all.
  return Math.max(1, Math.min(dense, Math.ceil(held(f) / unit)));
}

// budget: what staging IMAGEBYTES and the FOUND entries needs, in pages, inodes and bytes.
export function budget(imageBytes: number, found: readonly Found[], page: number, cores = availableParallelism()): Budget {
  const files = found.filter((f) => f.kind === 'file' && f.linkOf === undefined);
  const filePagesTotal = files.reduce((n, f) => n + filePages(f, page), 0);
  const imagePages = Math.ceil(imageBytes / page);
  const pages = imagePages + filePagesTotal + Math.ceil(SPARE_PAGES_BYTES / page);
  const inodes = files.length + 1 + SPARE_INODES;
  const workers = Math.max(1, Math.min(MAX_WORKERS, cores));
  const slots = slotsFor(workers);
  const decodeBytes = workers * WORKER_BYTES + slots * FRAME;
  const entryBytes = found.length * ENTRY_BYTES;
  const need = pages * page + decodeBytes + entryBytes + HEADROOM;
  return { page, pages, inodes, imagePages, filePages: filePagesTotal, files: files.length, entries: found.length, workers, slots, decodeBytes, entryBytes, need };
}

// checkRam: refuses (exit 6) unless the budget fits in MemAvailable; returns it for sizing the stage.
export async function checkRam(imageBytes: number, found: readonly Found[] = [], available: () => Promise<number> = memAvailable): Promise<Budget> {
  const b = budget(imageBytes, found, await pageSize());
  const avail = await available();
  if (b.need > avail) {
    throw new ReimageError(
      'memory',
      `staging needs ${human(b.need)} of RAM (the RAM stage ${b.pages} pages of ${human(b.page)}: image ${b.imagePages}, ${b.files} retained files ${b.filePages}; ` +
        `${b.inodes} inodes; ${b.entries} entries at ${human(ENTRY_BYTES)} each; the decoder ${human(b.decodeBytes)}: ${b.workers} threads, ${b.slots} frame slots of ${human(FRAME)}; ` +
        `${human(HEADROOM)} for the runtime) but only ${human(avail)} is available: add RAM or retain less`,
      { need: b.need, avail, pages: b.pages, inodes: b.inodes, page: b.page },
    );
  }
  return b;
}

// pageSize: the kernel's page size, from the auxiliary vector (AT_PAGESZ); 4 KiB if unreadable.
export async function pageSize(proc = '/proc'): Promise<number> {
  const auxv = await readFile(`${proc}/self/auxv`).catch(() => Buffer.alloc(0));
  const AT_PAGESZ = 6n;
  // 64-bit words (every platform Node 24 ships for), in the machine's byte order.
  const word = (off: number) => (endianness() === 'LE' ? auxv.readBigUInt64LE(off) : auxv.readBigUInt64BE(off));
  for (let off = 0; off + 16 <= auxv.length; off += 16) {
    if (word(off) === AT_PAGESZ) return Number(word(off + 8));
  }
  return 4096;
}
