// casync's chunk store: plain files, `<store>/<first 4 hex digits>/<id>.cacnk`,
// each one zstd frame of the chunk's bytes. Any web server serves one. A
// ChunkSource is where assembly gets the chunks no seed holds: it hands back
// a chunk file's bytes as stored; the caller decompresses and checks the id.
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { link, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
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
// by the chunk's size from the index (a hostile frame cannot balloon).
export const compressChunk = (data: Uint8Array, level: number): Buffer => zstdCompressSync(data, { params: { [constants.ZSTD_c_compressionLevel]: level } });
export function decompressChunk(stored: Buffer, size: number): Buffer | undefined {
  try {
    return zstdDecompressSync(stored, { maxOutputLength: Math.max(size, 1) });
  } catch {
    return undefined;
  }
}

// putChunk: store DATA under ID unless it is there already; written to a
// temporary name and linked into place, so a reader never sees half a chunk.
// Returns the stored size when it wrote one, 0 when it was there.
export async function putChunk(dir: string, id: string, data: Uint8Array, level: number): Promise<number> {
  const path = join(dir, chunkPath(id));
  if (await stat(path).catch(() => undefined)) return 0;
  const z = compressChunk(data, level);
  await mkdir(join(dir, id.slice(0, 4)), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(z);
  } finally {
    await fh.close();
  }
  await link(tmp, path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  await rm(tmp, { force: true });
  return z.length;
}
