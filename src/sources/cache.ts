// Where a run keeps the chunks (and the delta file) it downloaded while it
// assembles a chunked bundle: a directory under the run base (/run/reimage,
// a tmpfs), outside the RAM stage, so a run interrupted before its point of
// no return (or a plan) leaves them for the next run, which fetches none of
// them again. A run that wrote its image drops them; the initramfs drops them
// when its flow ends (cli/bundle.ts ramBring).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Log } from '../util/log.ts';
import type { Seeding } from './assembled.ts';
import { targetSeeds } from './kept.ts';

export const CHUNK_CACHE = 'chunk-cache';

// dropChunkCache: the downloaded chunks, once the image they served is written.
export async function dropChunkCache(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

// chunkSeeding: how the initramfs seeds a chunked bundle: from DISK (its kept index, else the whole disk), 8 downloads at once.
export function chunkSeeding(disk: string, runBase: string, log: Log): Seeding {
  return { seeds: () => targetSeeds(disk, runBase, log), jobs: 8, cache: join(runBase, CHUNK_CACHE) };
}
