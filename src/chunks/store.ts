// casync's chunk store: plain files, `<store>/<first 4 hex digits>/<id>.cacnk`,
// each one zstd frame of the chunk's bytes. Any web server serves one. A
// ChunkSource is where assembly gets the chunks no seed holds: it hands back
// a chunk file's bytes as stored; the caller decompresses and checks the id.
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

// chunkPath: where chunk ID (64 hex digits) lives below a store's root.
export const chunkPath = (id: string): string => `${id.slice(0, 4)}/${id}.cacnk`;

// What assembly needs from a store: a chunk file by id (undefined: not there).
export type ChunkSource = {
  // For messages: "chunk store /srv/chunks", "chunk store https://…".
  name: string;
  get(id: string, signal?: AbortSignal): Promise<Buffer | undefined>;
  // The stored (compressed) size without fetching it, when cheap; for estimates.
  size?(id: string): Promise<number | undefined>;
  // How many gets may run at once.
  parallel: number;
};

// dirSource: a store in a local directory.
export function dirSource(dir: string, parallel = 4): ChunkSource {
  return {
    name: `chunk store ${dir}`,
    parallel,
    get: (id) =>
      readFile(join(dir, chunkPath(id))).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      }),
    size: async (id) => (await stat(join(dir, chunkPath(id))).catch(() => undefined))?.size,
  };
}

// compressChunk, decompressChunk: one zstd frame; decompression is bounded
// by the chunk's size from the index (a hostile frame cannot balloon). The
// window is cut to the largest chunk: zstd sets up its tables per call, and for
// 4 KiB chunks that set-up, not the compression, is most of the time (2× faster).
export function compressChunk(data: Uint8Array, level: number, maxSize = data.length): Buffer {
  const log = Math.min(27, Math.max(10, Math.ceil(Math.log2(Math.max(maxSize, 1)))));
  const p = constants;
  return zstdCompressSync(data, { params: { [p.ZSTD_c_compressionLevel]: level, [p.ZSTD_c_windowLog]: log, [p.ZSTD_c_hashLog]: log, [p.ZSTD_c_chainLog]: log } });
}
export function decompressChunk(stored: Buffer, size: number): Buffer | undefined {
  try {
    return zstdDecompressSync(stored, { maxOutputLength: Math.max(size, 1) });
  } catch {
    return undefined;
  }
}

// chunkWriter: stores chunks in DIR unless there already; each is written to
// a temporary name and renamed into place, so a reader never sees half a
// chunk. Synchronous: a pack writes one small file per chunk, and the thread
// pool's round trip per call cost more than the call. Returns the stored
// size when it wrote one, 0 when it was there.
export function chunkWriter(dir: string, level: number, maxSize: number): (id: string, data: Uint8Array) => number {
  const made = new Set<string>();
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  return (id, data) => {
    const path = join(dir, chunkPath(id));
    if (existsSync(path)) return 0;
    const sub = id.slice(0, 4);
    if (!made.has(sub)) {
      mkdirSync(join(dir, sub), { recursive: true });
      made.add(sub);
    }
    const z = compressChunk(data, level, maxSize);
    const tmp = `${path}.${tag}`;
    writeFileSync(tmp, z);
    renameSync(tmp, path);
    return z.length;
  };
}
