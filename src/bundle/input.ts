// What pack reads: a raw disk image as given, or a compressed one as disk
// images are commonly shipped (disk.img.gz, .xz, .bz2, .zst), recognised by
// its magic bytes (never only the suffix) and decoded once into a sparse
// temporary file in the output directory (all-zero 4 KiB blocks are skipped,
// not written), which pack then reads like any raw image and removes. The
// decoded size is capped (--max-size): a few KiB of zeros compressed can
// claim terabytes and would decode for hours into a sparse file that takes
// no space, so nothing else would stop it.
import { mkdir, open, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { codecs, detect } from '../codecs/index.ts';
import { bundleError, ReimageError } from '../errors.ts';
import { parseTable } from '../image/table.ts';
import { human } from '../util/bytes.ts';
import type { Log } from '../util/log.ts';

const BLOCK = 4096;
const HEAD = 1 << 20;

// MAX_DECODED: the default cap on what a compressed IMAGE may decode to (pack --max-size).
export const MAX_DECODED = 64 * 2 ** 30;

// Input: the raw image's path, and what removes it when it was decoded here.
export type Input = { path: string; done: () => Promise<void> };

// rawInput: IMAGE itself when it is not compressed, else its decoded bytes in OUT.
export async function rawInput(image: string, out: string, log: Log, max = MAX_DECODED): Promise<Input> {
  const asIs = { path: image, done: async () => {} };
  const fh = await open(image, 'r').catch(() => undefined);
  if (!fh) return asIs; // pack names the unreadable path
  const head = await fh.read({ buffer: Buffer.alloc(16), position: 0 }).finally(() => fh.close());
  const kind = detect(head.buffer.subarray(0, head.bytesRead));
  if (kind === 'none') return asIs;
  await mkdir(out, { recursive: true });
  const path = join(out, `.decoded-${basename(image)}.raw`);
  const done = () => rm(path, { force: true });
  try {
    const size = await log.step(`decompress ${image} (${kind}) into ${path}`, () => decodeSparse(image, kind, path, max));
    await checkDisk(image, kind, path, size);
  } catch (e) {
    await done();
    throw e;
  }
  return { path, done };
}

// decodeSparse: the decoded bytes of IMAGE into PATH, zero blocks left as holes,
// stopped as soon as they pass MAX bytes; returns the size.
async function decodeSparse(image: string, kind: Exclude<ReturnType<typeof detect>, 'none'>, path: string, max: number): Promise<number> {
  // Opened before decoding starts: an external decoder's output (execa) flows
  // as soon as it is spawned, and bytes that arrive before the loop below
  // reads them are lost, so nothing may be awaited in between.
  const fh = await open(path, 'w', 0o600);
  const d = codecs[kind].decode(image);
  let pos = 0;
  try {
    for await (const chunk of d.stream as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i += BLOCK) {
        const b = chunk.subarray(i, Math.min(chunk.length, i + BLOCK));
        if (b.some((x) => x !== 0)) await fh.write(b, 0, b.length, pos + i);
      }
      pos += chunk.length;
      if (pos > max) break;
    }
    // Thrown inside the try: the catch below stops the decoder.
    if (pos > max) {
      throw bundleError(
        `${image} is ${kind}-compressed and decodes to more than ${human(max)} (${max} bytes, the --max-size cap), so it was stopped there: it is not the disk image it claims to be, or it is larger than expected; if it is, pass --max-size with its decoded size`,
      );
    }
    await d.done;
    await fh.truncate(pos);
  } catch (e) {
    d.stop();
    await d.done.catch(() => {});
    if (e instanceof ReimageError) throw e;
    throw bundleError(`${image} looks ${kind}-compressed but does not decompress (${(e as Error).message}): the file is corrupt or incomplete; download it again`);
  } finally {
    await fh.close();
  }
  return pos;
}

// checkDisk: what was decoded must be a whole-disk image (whole sectors, a partition table).
async function checkDisk(image: string, kind: string, path: string, size: number): Promise<void> {
  const fh = await open(path, 'r');
  const head = await fh.read({ buffer: Buffer.alloc(HEAD), position: 0 }).finally(() => fh.close());
  // An MBR made for 4096-byte sectors has its EBRs at 4096-byte offsets: either reading is a table.
  const tries = [512, 4096].map((ss) => parseTable(head.buffer.subarray(0, head.bytesRead), ss));
  const r = tries.find((x) => !('error' in x)) ?? tries[0]!;
  const why = size === 0 || size % 512 !== 0 ? `${size} bytes, not a whole number of 512-byte sectors` : 'error' in r ? r.error : undefined;
  if (why) throw bundleError(`${image} is ${kind}-compressed, but what it holds is not a whole-disk image (${why}): pass a compressed whole-disk image (GPT or MBR), not a file system or an archive`);
}
