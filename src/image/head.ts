// The first raw bytes of a staged image, decoded with the bundle's own codec
// and stopped as soon as they are in hand (the image's own partition table is
// in its first few KiB; decoding the rest would cost a full pass), and the
// check that the table there is the one the manifest states.
import { bundleError } from '../errors.ts';
import { codecs } from '../codecs/index.ts';
import { parseTable, tableDifference, type ImageTable } from './table.ts';
import type { ImageSpec } from './mismatch.ts';

// What the head checks need of a manifest: the image and the table it states.
type Manifest = ImageSpec & { table: ImageTable };

// The GPT header and a standard 128-entry array end at 17 KiB (512-byte
// sectors) or 24 KiB (4096): 1 MiB covers both and any usual alignment.
const HEAD = 1 << 20;
const MOST = 16 << 20;

// readHead: up to N raw bytes from the start of the staged image.
export const readHead = (staged: string, m: Manifest, n: number): Promise<Buffer> => readAt(staged, m, 0, n);

// readAt: the raw bytes [OFFSET, OFFSET + N) of the staged image (cut at its
// raw size), decoded from the start; only those bytes are kept in memory.
export async function readAt(staged: string, m: Manifest, offset: number, n: number): Promise<Buffer> {
  const end = Math.min(offset + n, m.raw.size);
  const d = codecs[m.image.codec].decode(staged);
  const parts: Buffer[] = [];
  let pos = 0;
  try {
    for await (const chunk of d.stream as AsyncIterable<Buffer>) {
      const from = pos;
      pos += chunk.length;
      if (pos > offset && from < end) parts.push(Buffer.from(chunk.subarray(Math.max(0, offset - from), Math.min(chunk.length, end - from))));
      if (pos >= end) break;
    }
  } catch (e) {
    throw bundleError(`the image does not decompress (${(e as Error).message}): it is corrupt; rebuild the bundle with reimage pack`);
  } finally {
    d.stop();
    await d.done.catch(() => {});
  }
  return Buffer.concat(parts);
}

// imageTable: the partition table in the staged image's first bytes, and the
// MBR's extended boot records wherever they are (one decode each).
export async function imageTable(staged: string, m: Manifest): Promise<ImageTable> {
  let n = HEAD;
  let head = await readHead(staged, m, n);
  const ebrs = new Map<number, Buffer>();
  for (;;) {
    const r = parseTable(head, m.table.sectorSize, ebrs);
    if ('table' in r) return r.table;
    if ('error' in r) throw bundleError(`the image in the bundle cannot be used: ${r.error}; rebuild the bundle with reimage pack`);
    if ('needAt' in r) {
      const ebr = await readAt(staged, m, r.needAt, 512);
      if (ebr.length < 512) throw bundleError(`the image's extended boot record at byte ${r.needAt} lies past its end (${m.raw.size} bytes): rebuild the image`);
      ebrs.set(r.needAt, ebr);
      continue;
    }
    if (r.need <= n || r.need > MOST || head.length < n)
      throw bundleError(`the image's partition table reaches past its first ${head.length} bytes (to byte ${r.need}): rebuild the image with a standard GPT`);
    n = r.need;
    head = await readHead(staged, m, n);
  }
}

// checkImageTable: the image's own table must be the manifest's, field for field (exit 3 naming the first difference).
export async function checkImageTable(staged: string, m: Manifest): Promise<ImageTable> {
  const t = await imageTable(staged, m);
  const d = tableDifference(m.table, t);
  if (d) throw bundleError(`the bundle's manifest does not describe its image: ${d}; rebuild the bundle with reimage pack (and re-sign it)`);
  return t;
}
