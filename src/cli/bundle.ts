// The CLI's side of bundle sources and reports: --bundle handed to the flow as
// a local directory (brought by its source kind, into RAM when it cannot be
// read in place, released afterwards).
import type { Bring } from '../boot/boot.ts';
import { loadTrusted, type TrustedKey } from '../bundle/sign.ts';
import { checkRam } from '../stages/budget.ts';
import type { NetFlags } from '../net/options.ts';
import type { Seeding } from '../sources/assembled.ts';
import { chunkSeeding, dropChunkCache } from '../sources/cache.ts';
import { bundleInRam, type InRam } from '../sources/ram.ts';
import { createCleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';

export type BundleOptions = { log: Log; signal: AbortSignal; runBase: string; net: NetFlags; trusted: readonly TrustedKey[]; ram?: (n: number) => Promise<unknown>; seeding?: Seeding };

// withBundle: SPEC as a local directory for FN; whatever the source mounted or copied is undone afterwards.
export async function withBundle<T>(spec: string, o: BundleOptions, fn: (src: InRam) => Promise<T>): Promise<T> {
  const cleanup = createCleanup(o.log);
  try {
    const src = await bundleInRam(spec, { ...o, cleanup, tty: process.stderr.isTTY === true });
    return await fn(src);
  } finally {
    await cleanup.runAll();
  }
}

// ramBring: how the initramfs brings its bundle: always into RAM, whatever the
// source (the medium may be the target disk), trusted keys and site CA as baked.
export const ramBring =
  (log: Log, runBase: string): Bring =>
  async (spec, b) => {
    // The target disk, chosen before the bundle is brought when it comes over a network, seeds a chunked bundle. What that
    // downloads (chunks, a delta) is RAM no later boot needs: dropped when the flow ends, not carried into a booted system.
    const seeding = b.seedTarget ? chunkSeeding(b.seedTarget, runBase, log) : undefined;
    if (seeding) b.cleanup.push('drop the downloaded chunks', () => dropChunkCache(seeding.cache));
    return bundleInRam(spec, {
      log,
      cleanup: b.cleanup,
      runBase,
      net: { ...b.limits, ...(b.ca ? { ca: b.ca } : {}) },
      trusted: await loadTrusted(b.trust),
      tty: false,
      ram: (n) => checkRam(n),
      always: true,
      ...(seeding ? { seeding } : {}),
      ...(b.signal ? { signal: b.signal } : {}),
    });
  };
