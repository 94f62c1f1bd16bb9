// The chunk store of a bundle on a web server, as a ChunkSource for seeded
// assembly: each chunk one GET of `<store>/xxxx/<id>.cacnk` over the same
// keep-alive agents, TLS trust, credentials, stall timeout and retries as
// every other download (net/). Absent (404/410) is an answer: the assembly
// names the chunk. The bytes are handed back as stored; the assembly core
// decompresses them and checks each against its id.
import type { NetOptions } from '../net/options.ts';
import { getSmall, headSize } from '../net/small.ts';
import { chunkPath, type ChunkSource } from '../chunks/store.ts';
import type { Log } from '../util/log.ts';

export type HttpChunkOptions = { net: NetOptions; log: Log; retries: number; parallel: number };

// httpChunkSource: the store at BASE (a directory URL ending in "/"), at most PARALLEL requests at once.
export function httpChunkSource(base: URL, o: HttpChunkOptions): ChunkSource {
  const url = (id: string) => new URL(chunkPath(id), base).toString();
  const small = (signal?: AbortSignal) => ({ net: o.net, log: o.log, retries: o.retries, ...(signal ? { signal } : {}) });
  return {
    name: `chunk store ${base.toString()}`,
    parallel: Math.max(1, o.parallel),
    get: (id, signal) => getSmall(url(id), `chunk ${id}`, small(signal)),
    size: (id) => headSize(url(id), small()),
  };
}
