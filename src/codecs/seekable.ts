// zstd's seekable format: the image compressed as independent frames (8 MiB of
// raw bytes each), followed by a seek table in a skippable frame that any zstd
// decoder ignores. Independent frames decompress in parallel (one worker
// thread per core); the table says where each frame starts and how big it is
// raw. Format: github.com/facebook/zstd contrib/seekable_format.
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { constants, zstdCompress } from 'node:zlib';
import { promisify } from 'node:util';

const SKIPPABLE_MAGIC = 0x184d2a5e;
const SEEKABLE_MAGIC = 0x8f92eab1;
const FOOTER = 9;
// Raw bytes per frame when reimage packs; the block map's ranges never cross a multiple of it.
export const FRAME = 8 << 20;
// Largest frame accepted when reading someone else's seekable file.
const MAX_FRAME = 64 << 20;

export type Frame = { cOff: number; cLen: number; rawOff: number; rawLen: number };

// readSeekTable: the frames of a seekable zstd file, or undefined when the file
// has no (valid) seek table; then it is decoded as one stream.
export async function readSeekTable(file: string): Promise<Frame[] | undefined> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size < 8 + FOOTER) return undefined;
    const foot = Buffer.alloc(FOOTER);
    await fh.read(foot, 0, FOOTER, size - FOOTER);
    if (foot.readUInt32LE(5) !== SEEKABLE_MAGIC) return undefined;
    const count = foot.readUInt32LE(0);
    const entry = foot[4]! & 0x80 ? 12 : 8;
    const tableLen = 8 + count * entry + FOOTER;
    if (count === 0 || tableLen > size || (foot[4]! & 0x7c) !== 0) return undefined;
    const table = Buffer.alloc(tableLen);
    await fh.read(table, 0, tableLen, size - tableLen);
    if (table.readUInt32LE(0) !== SKIPPABLE_MAGIC || table.readUInt32LE(4) !== tableLen - 8) return undefined;
    const frames: Frame[] = [];
    let cOff = 0;
    let rawOff = 0;
    for (let k = 0; k < count; k++) {
      const cLen = table.readUInt32LE(8 + k * entry);
      const rawLen = table.readUInt32LE(12 + k * entry);
      if (rawLen > MAX_FRAME || cLen === 0) return undefined;
      frames.push({ cOff, cLen, rawOff, rawLen });
      cOff += cLen;
      rawOff += rawLen;
    }
    return cOff + tableLen === size ? frames : undefined;
  } finally {
    await fh.close();
  }
}

const compress = promisify(zstdCompress);

// encodeSeekable: IMAGE compressed into OUT as independent FRAME-sized frames
// (level 9, one frame per core at a time) and the seek table.
export async function encodeSeekable(image: string, out: string, level = 9, tick?: (n: number) => void): Promise<void> {
  const src = await open(image, 'r');
  try {
    const size = (await src.stat()).size;
    let at = 0;
    const next = async () => {
      if (at >= size) return undefined;
      const n = Math.min(FRAME, size - at);
      const raw = Buffer.allocUnsafe(n);
      const { bytesRead } = await src.read(raw, 0, n, at);
      if (bytesRead !== n) throw new Error(`${image} shrank while it was compressed`);
      at += n;
      return raw;
    };
    await writeSeekable(next, out, level, tick);
  } finally {
    await src.close();
  }
}

// writeSeekable: the raw frames NEXT yields (undefined: the end) compressed
// into OUT concurrently, one frame per core at a time, written in order, then
// the seek table; returns the bytes written.
export async function writeSeekable(next: () => Promise<Buffer | undefined>, out: string, level: number, tick?: (n: number) => void): Promise<number> {
  const dst = await open(out, 'w');
  try {
    const sizes: [number, number][] = [];
    const lanes = Math.max(1, availableParallelism());
    const pending: { job: Promise<Buffer>; raw: number }[] = [];
    let written = 0;
    const drain = async () => {
      const { job, raw } = pending.shift()!;
      const c = await job;
      await dst.write(c, 0, c.length, written);
      written += c.length;
      sizes.push([c.length, raw]);
      tick?.(raw);
    };
    try {
      for (let raw = await next(); raw; raw = await next()) {
        pending.push({ job: compress(raw, { params: { [constants.ZSTD_c_compressionLevel]: level } }), raw: raw.length });
        if (pending.length >= lanes * 2) await drain();
      }
      while (pending.length) await drain();
    } finally {
      // Never leave a compression job's rejection unobserved.
      await Promise.allSettled(pending.map((p) => p.job));
    }
    const table = Buffer.alloc(8 + sizes.length * 8 + FOOTER);
    table.writeUInt32LE(SKIPPABLE_MAGIC, 0);
    table.writeUInt32LE(table.length - 8, 4);
    sizes.forEach(([c, r], k) => {
      table.writeUInt32LE(c, 8 + k * 8);
      table.writeUInt32LE(r, 12 + k * 8);
    });
    // The descriptor byte stays 0: no per-frame checksums.
    table.writeUInt32LE(sizes.length, table.length - FOOTER);
    table.writeUInt32LE(SEEKABLE_MAGIC, table.length - 4);
    await dst.write(table, 0, table.length, written);
    return written + table.length;
  } finally {
    await dst.close();
  }
}
