// The first raw bytes of a staged image, decoded with the bundle's own codec
// and stopped as soon as they are in hand (the image's own partition table is
// in its first few KiB; decoding the rest would cost a full pass), and the
// check that the table there is the one the manifest states.
import { bundleError } from '../errors.ts';
import { codecs } from '../codecs/index.ts';
import { extendedReason, parseTable, tableDifference, type ImageTable } from './table.ts';
import type { ImageSpec } from './mismatch.ts';

// What the head checks need of a manifest: the image and the table it states.
type Manifest = ImageSpec & { table: ImageTable };

// The GPT header and a standard 128-entry array end at 17 KiB (512-byte
// sectors) or 24 KiB (4096): 1 MiB covers both and any usual alignment.
const HEAD = 1 << 20;
const MOST = 16 << 20;

// readHead: up to N raw bytes from the start of the staged image.
export async function readHead(staged: string, m: Manifest, n: number): Promise<Buffer> {
  const want = Math.min(n, m.raw.size);
  const d = codecs[m.image.codec].decode(staged);
  const parts: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of d.stream as AsyncIterable<Buffer>) {
      parts.push(chunk);
      got += chunk.length;
      if (got >= want) break;
    }
  } catch (e) {
    throw bundleError(`the image does not decompress (${(e as Error).message}): it is corrupt; rebuild the bundle with reimage pack`);
  } finally {
    d.stop();
    await d.done.catch(() => {});
  }
  return Buffer.concat(parts).subarray(0, want);
}

// imageTable: the partition table in the staged image's first bytes.
export async function imageTable(staged: string, m: Manifest): Promise<ImageTable> {
  let n = HEAD;
  for (;;) {
    const head = await readHead(staged, m, n);
    const r = parseTable(head, m.table.sectorSize);
    if ('table' in r) return r.table;
    if ('error' in r) throw bundleError(`the image in the bundle cannot be used: ${r.error}; rebuild the bundle with reimage pack`);
    if (r.need <= n || r.need > MOST || head.length < n)
      throw bundleError(`the image's partition table reaches past its first ${head.length} bytes (to byte ${r.need}): rebuild the image with a standard GPT`);
    n = r.need;
  }
}

// checkImageTable: the image's own table must be the manifest's, field for field (exit 3 naming the first difference).
export async function checkImageTable(staged: string, m: Manifest): Promise<ImageTable> {
  const t = await imageTable(staged, m);
  const why = extendedReason(t);
  if (why) throw bundleError(`the image in the bundle cannot be used: ${why}`);
  const d = tableDifference(m.table, t);
  if (d) throw bundleError(`the bundle's manifest does not describe its image: ${d}; rebuild the bundle with reimage pack (and re-sign it)`);
  return t;
}
