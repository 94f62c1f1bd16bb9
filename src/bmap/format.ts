// Block maps in bmaptool's XML format (bmap version 2.0, also read: 1.3/1.4),
// so .bmap files from `bmaptool create` and ours are interchangeable: ranges of
// mapped (written) blocks, each with the checksum of its bytes, and a checksum
// of the file itself (computed with its own value replaced by zeros).
import { createHash, getHashes } from 'node:crypto';
import { bundleError } from '../errors.ts';

// What happens to the blocks a block map leaves out (they are zero in the image):
//   zero     they read back as zeros afterwards: the disk's write-zeroes offload
//            (BLKZEROOUT) when it has one, else they are written. The disk then
//            equals the image byte for byte. The default.
//   write    every byte of the image is written, zeros included.
//   discard  BLKDISCARD where the disk supports it: they may read back as zeros
//            or as old data (a discard is not guaranteed to read back as zero).
//   leave    untouched: they keep whatever the old system had there.
// With discard and leave, old data stays readable in free space, and the new
// file systems must not rely on zeroed free space; read-back (--verify-written)
// then checks the mapped ranges only. The restore of retained files is the
// same under every policy: it writes through the new file systems.
export const UNMAPPED = ['zero', 'write', 'discard', 'leave'] as const;
export type Unmapped = (typeof UNMAPPED)[number];

export type MapRange = { first: number; last: number; sum?: string };

export type BlockMap = {
  imageSize: number;
  blockSize: number;
  // The hash each range's checksum uses (sha256 in what reimage writes).
  checksum: string;
  ranges: MapRange[];
};

// A byte extent of the image and the checksum of its bytes.
export type Extent = { start: number; end: number; sum: string };

export const mappedBlocks = (b: BlockMap) => b.ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
export const blocksCount = (b: BlockMap) => Math.ceil(b.imageSize / b.blockSize);

// extents: the mapped ranges as byte extents (the last block ends at the image's end).
export function extents(b: BlockMap): Extent[] {
  return b.ranges.map((r) => ({ start: r.first * b.blockSize, end: Math.min((r.last + 1) * b.blockSize, b.imageSize), sum: r.sum! }));
}

const tag = (xml: string, name: string): string | undefined => new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml)?.[1];

// parseBmap: a .bmap file's bytes, validated; every range must carry a checksum
// (reimage verifies every byte it writes).
export function parseBmap(bytes: Buffer, origin: string): BlockMap {
  const bad = (why: string) => bundleError(`block map ${origin} ${why}: recreate it with reimage pack (or bmaptool create)`);
  const text = bytes.toString('utf8');
  const xml = text.replace(/<!--[\s\S]*?-->/g, '');
  const version = /<bmap\s+version="(\d+)\.(\d+)"\s*>/.exec(xml);
  if (!version) throw bad('is not a bmaptool block map (no <bmap version="…"> element)');
  const [major, minor] = [Number(version[1]), Number(version[2])];
  if (major > 2 || (major === 1 && minor < 3)) throw bad(`has format version ${major}.${minor}; versions 1.3 to 2.x are supported`);
  const v2 = major === 2 || minor === 4;
  const checksum = v2 ? (tag(xml, 'ChecksumType') ?? '') : 'sha1';
  if (!getHashes().includes(checksum)) throw bad(`names the checksum type "${checksum}", which is unknown`);
  const int = (name: string) => {
    const s = tag(xml, name);
    if (!s || !/^\d{1,16}$/.test(s) || !Number.isSafeInteger(Number(s))) throw bad(`has no valid <${name}> (got ${JSON.stringify(s ?? null)})`);
    return Number(s);
  };
  const imageSize = int('ImageSize');
  const blockSize = int('BlockSize');
  if (blockSize < 512 || blockSize > 1 << 24 || blockSize % 512 !== 0) throw bad(`has block size ${blockSize}; it must be a multiple of 512 up to 16 MiB`);
  const count = int('BlocksCount');
  if (count !== Math.ceil(imageSize / blockSize)) throw bad(`says ${count} blocks, but ${imageSize} bytes make ${Math.ceil(imageSize / blockSize)} blocks of ${blockSize}`);
  const sumLen = createHash(checksum).digest('hex').length;
  const fileTag = v2 ? 'BmapFileChecksum' : 'BmapFileSHA1';
  const fileSum = tag(xml, fileTag);
  if (!fileSum || !new RegExp(`^[0-9a-f]{${sumLen}}$`).test(fileSum)) throw bad(`has no valid <${fileTag}>`);
  const at = text.indexOf(fileSum);
  const zeroed = text.slice(0, at) + '0'.repeat(sumLen) + text.slice(at + sumLen);
  const got = createHash(checksum).update(zeroed, 'utf8').digest('hex');
  if (got !== fileSum) throw bad(`is corrupt: its own checksum is ${got}, not the ${fileSum} it states`);

  const attr = v2 ? 'chksum' : 'sha1';
  const ranges: MapRange[] = [];
  const body = /<BlockMap>([\s\S]*)<\/BlockMap>/.exec(xml)?.[1];
  if (body === undefined) throw bad('has no <BlockMap> element');
  for (const m of body.matchAll(/<Range([^>]*)>\s*(\d+)\s*(?:-\s*(\d+)\s*)?<\/Range>/g)) {
    const first = Number(m[2]);
    const last = m[3] === undefined ? first : Number(m[3]);
    const sum = new RegExp(`${attr}="([0-9a-f]+)"`).exec(m[1]!)?.[1];
    const prev = ranges[ranges.length - 1];
    if (last < first || last >= count || (prev && first <= prev.last)) throw bad(`has range ${m[2]}-${m[3] ?? m[2]} out of order, overlapping, or beyond block ${count - 1}`);
    if (!sum || sum.length !== sumLen) throw bad(`has range ${first}-${last} without a ${checksum} checksum (reimage checks every byte it writes)`);
    ranges.push({ first, last, sum });
  }
  if (body.replace(/<Range[^>]*>[^<]*<\/Range>/g, '').trim() !== '') throw bad('has something other than <Range> elements in <BlockMap>');
  const mapped = int('MappedBlocksCount');
  const b: BlockMap = { imageSize, blockSize, checksum, ranges };
  if (mapped !== mappedBlocks(b)) throw bad(`says ${mapped} mapped blocks but its ranges hold ${mappedBlocks(b)}`);
  return b;
}

// formatBmap: bmaptool's version 2.0 text for a block map, its own checksum filled in.
export function formatBmap(b: BlockMap, comment = 'made by reimage pack'): Buffer {
  const sumLen = createHash(b.checksum).digest('hex').length;
  const lines = [
    '<?xml version="1.0" ?>',
    `<!-- Block map (bmaptool format) ${comment.replace(/--/g, '- -')}: only the ranges listed hold data;`,
    '     every other block of the image is zero. Each range carries the checksum of its bytes. -->',
    '<bmap version="2.0">',
    `    <ImageSize> ${b.imageSize} </ImageSize>`,
    `    <BlockSize> ${b.blockSize} </BlockSize>`,
    `    <BlocksCount> ${blocksCount(b)} </BlocksCount>`,
    `    <MappedBlocksCount> ${mappedBlocks(b)} </MappedBlocksCount>`,
    `    <ChecksumType> ${b.checksum} </ChecksumType>`,
    `    <BmapFileChecksum> ${'0'.repeat(sumLen)} </BmapFileChecksum>`,
    '    <BlockMap>',
    ...b.ranges.map((r) => `        <Range chksum="${r.sum}"> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </Range>`),
    '    </BlockMap>',
    '</bmap>',
    '',
  ];
  const text = lines.join('\n');
  const sum = createHash(b.checksum).update(text, 'utf8').digest('hex');
  return Buffer.from(text.replace(`<BmapFileChecksum> ${'0'.repeat(sumLen)} `, `<BmapFileChecksum> ${sum} `), 'utf8');
}
