// The partition table inside an image's own first bytes (GPT header and entry
// array, or the MBR), parsed from bytes with no tool, and compared with the
// table the manifest states. A manifest whose table differs from the image it
// names would send the settle and restore stages after partitions that do not
// exist: this is found before the point of no return. An MBR's logical
// partitions are found by following its chain of extended boot records (EBRs),
// which may lie anywhere in the image: the parser asks for each one by offset.
import { crc32 } from 'node:zlib';

export type ImagePart = { number: number; start: number; size: number; type: string; uuid?: string; name?: string };
export type ImageTable = { label: 'gpt' | 'dos'; id: string; sectorSize: number; partitions: ImagePart[] };

// What parseTable needs when the head it was given is too short: more of the
// head (need: bytes from the start), or one EBR's 512 bytes (needAt: its offset).
export type Parsed = { table: ImageTable } | { need: number } | { needAt: number } | { error: string };

const GPT_SIG = 'EFI PART';

// guid: the mixed-endian 16 bytes of a GPT GUID as lowercase text.
export function guid(b: Buffer): string {
  const h = (x: Buffer) => x.toString('hex');
  const le = (x: Buffer) => h(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

// gptAt: the GPT header at LBA 1 for a sector size, or undefined when the signature is not there.
function gptAt(head: Buffer, ss: number): Parsed | undefined {
  if (head.length < ss + 92 || head.toString('latin1', ss, ss + 8) !== GPT_SIG) return undefined;
  const hdrSize = head.readUInt32LE(ss + 12);
  if (hdrSize < 92 || hdrSize > ss) return { error: `its GPT header size ${hdrSize} is invalid` };
  const hdr = Buffer.from(head.subarray(ss, ss + hdrSize));
  const want = hdr.readUInt32LE(16);
  hdr.writeUInt32LE(0, 16);
  if (crc32(hdr) !== want) return { error: 'its primary GPT header fails its CRC32' };
  const entriesAt = Number(head.readBigUInt64LE(ss + 72)) * ss;
  const count = head.readUInt32LE(ss + 80);
  const esize = head.readUInt32LE(ss + 84);
  if (esize < 128 || esize % 8 !== 0 || count > 4096) return { error: `its GPT entry array (${count} entries of ${esize} bytes) is invalid` };
  const end = entriesAt + count * esize;
  if (end > head.length) return { need: end };
  const arr = head.subarray(entriesAt, end);
  if (crc32(arr) !== head.readUInt32LE(ss + 88)) return { error: 'its GPT entry array fails its CRC32' };
  const partitions: ImagePart[] = [];
  for (let i = 0; i < count; i++) {
    const e = arr.subarray(i * esize, (i + 1) * esize);
    if (e.subarray(0, 16).every((x) => x === 0)) continue;
    const first = Number(e.readBigUInt64LE(32));
    const name = e.toString('utf16le', 56, 128).replace(/\0[\s\S]*$/, '');
    partitions.push({ number: i + 1, start: first, size: Number(e.readBigUInt64LE(40)) - first + 1, type: guid(e.subarray(0, 16)), uuid: guid(e.subarray(16, 32)), ...(name ? { name } : {}) });
  }
  return { table: { label: 'gpt', id: guid(head.subarray(ss + 56, ss + 72)), sectorSize: ss, partitions } };
}

// EXTENDED: MBR partition types that hold logical partitions (DOS, Win95 LBA, Linux).
export const EXTENDED = new Set(['5', 'f', '85']);

// isExtended: whether an MBR type (sfdisk's "5", "0x5" or "f") is an extended partition.
export const isExtended = (type: string) => EXTENDED.has(type.toLowerCase().replace(/^0x0*/, ''));

// mbrEntry: the partition in one 16-byte MBR/EBR entry (start relative to BASE), or undefined when empty.
function mbrEntry(e: Buffer, number: number, base: number): ImagePart | undefined {
  const type = e[4] ?? 0;
  if (type === 0) return undefined;
  return { number, start: base + e.readUInt32LE(8), size: e.readUInt32LE(12), type: type.toString(16) };
}

// logicals: the logical partitions inside extended partition EXT, numbered
// from 5 in chain order. Each EBR holds one logical partition (start relative
// to the EBR) and a link to the next EBR (relative to the extended partition's start).
function logicals(head: Buffer, ss: number, ext: ImagePart, ebrs: ReadonlyMap<number, Buffer>): ImagePart[] | { needAt: number } | { error: string } {
  const out: ImagePart[] = [];
  const seen = new Set<number>();
  for (let link = 0; ; ) {
    const at = (ext.start + link) * ss;
    if (seen.has(at) || seen.size >= 124) return { error: `its chain of logical partitions (extended partition ${ext.number}) loops or has more than 124 links` };
    seen.add(at);
    const ebr = at + 512 <= head.length ? head.subarray(at, at + 512) : ebrs.get(at);
    if (!ebr) return { needAt: at };
    if (ebr.length < 512 || ebr.readUInt16LE(510) !== 0xaa55) return { error: `the extended boot record at byte ${at} (extended partition ${ext.number}) has no signature` };
    const p = mbrEntry(ebr.subarray(446, 462), 5 + out.length, ext.start + link);
    if (p) out.push(p);
    const next = ebr.subarray(462, 478);
    if (!next[4] || next.readUInt32LE(8) === 0) return out;
    link = next.readUInt32LE(8);
  }
}

// parseTable: the table in HEAD (the image's first bytes). SECTOR is the sector
// size to try first; a GPT is looked for at 512 and 4096. EBRS holds the
// extended boot records asked for before (byte offset -> 512 bytes).
export function parseTable(head: Buffer, sector = 512, ebrs: ReadonlyMap<number, Buffer> = new Map()): Parsed {
  for (const ss of [sector, ...[512, 4096].filter((s) => s !== sector)]) {
    const g = gptAt(head, ss);
    if (g) return g;
  }
  if (head.length < 512) return { need: 512 };
  if (head.readUInt16LE(510) !== 0xaa55) return { error: 'it has no partition table (no GPT header, no MBR signature)' };
  const partitions: ImagePart[] = [];
  for (let i = 0; i < 4; i++) {
    const p = mbrEntry(head.subarray(446 + i * 16, 462 + i * 16), i + 1, 0);
    if (p) partitions.push(p);
  }
  const ext = partitions.filter((p) => isExtended(p.type));
  if (ext.length > 1) return { error: `its MBR has ${ext.length} extended partitions (${ext.map((p) => p.number).join(', ')}); an MBR holds at most one` };
  const chain = ext[0] ? logicals(head, sector, ext[0], ebrs) : [];
  if (!Array.isArray(chain)) return chain;
  return { table: { label: 'dos', id: `0x${head.readUInt32LE(440).toString(16).padStart(8, '0')}`, sectorSize: sector, partitions: [...partitions, ...chain] } };
}

const norm = (s: string | undefined) => (s ?? '').toLowerCase();

// tableDifference: the first field where the image's own table differs from the manifest's, or undefined.
export function tableDifference(m: ImageTable, img: ImageTable): string | undefined {
  const diff = (what: string, said: unknown, found: unknown) => `${what}: the manifest says ${JSON.stringify(said)}, the image's own table says ${JSON.stringify(found)}`;
  if (m.label !== img.label) return diff('table.label', m.label, img.label);
  if (m.sectorSize !== img.sectorSize) return diff('table.sectorSize', m.sectorSize, img.sectorSize);
  if (norm(m.id) !== norm(img.id)) return diff('table.id', m.id, img.id);
  for (const p of m.partitions) {
    const q = img.partitions.find((x) => x.number === p.number);
    const at = `table.partitions[number=${p.number}]`;
    if (!q) return `${at}: the manifest names partition ${p.number}, the image's own table has no such partition`;
    if (p.start !== q.start) return diff(`${at}.start`, p.start, q.start);
    if (p.size !== q.size) return diff(`${at}.size`, p.size, q.size);
    if (norm(p.type) !== norm(q.type)) return diff(`${at}.type`, p.type, q.type);
    if (img.label === 'gpt' && norm(p.uuid) !== norm(q.uuid)) return diff(`${at}.uuid`, p.uuid, q.uuid);
    if (img.label === 'gpt' && (p.name ?? '') !== (q.name ?? '')) return diff(`${at}.name`, p.name ?? '', q.name ?? '');
  }
  const extra = img.partitions.find((q) => !m.partitions.some((p) => p.number === q.number));
  if (extra) return `table.partitions: the image's own table has partition ${extra.number}, which the manifest does not name`;
  return undefined;
}
