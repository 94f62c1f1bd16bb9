// A bundle brought into RAM for a run: a private tmpfs under the run base,
// sized to the bundle once its (signed) manifest says how large it is, after
// the RAM check. A source that can be read in place (a local directory) is
// used in place: the flow copies the image into its own RAM stage while
// hashing it. Either way the flow gets a directory, and `inRam` says whether
// it is already a private copy in RAM (RunOptions.bundleInRam).
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrustedKey } from '../bundle/sign.ts';
import { mount, umount } from '../system/tools.ts';
import type { CompactReport } from '../chunks/compact.ts';
import { assembleBundle, type Seeding } from './assembled.ts';
import { bringBundle, readTrusted } from './bring.ts';
import { openSource } from './index.ts';
import type { SourceEnv } from './types.ts';

export type InRam = { dir: string; inRam: boolean; where: string; device?: { source: string; disk?: string }; assembly?: CompactReport };

export type RamOptions = SourceEnv & {
  trusted: readonly TrustedKey[];
  tty: boolean;
  // The RAM check (stages/budget.ts checkRam): refuses when BYTES cannot be staged.
  // Without it (verify, as any user) the copy goes to a temporary directory on disk, removed afterwards.
  ram?: (bytes: number) => Promise<unknown>;
  // Copy even a local directory (the initramfs: the medium is unmounted before writing).
  always?: boolean;
  // A chunked bundle from a remote source is assembled from these seeds instead of downloaded whole (assembled.ts).
  seeding?: Seeding;
};

// bundleInRam: SPEC's bundle as a local directory for the flow, in RAM unless it can be read in place.
export async function bundleInRam(spec: string, o: RamOptions): Promise<InRam> {
  const r = await openSource(spec, o);
  try {
    if (r.local !== undefined && !o.always) return { dir: r.local, inRam: false, where: r.where };
    await mkdir(o.runBase, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(join(o.runBase, 'bundle-'));
    const ram = o.ram;
    // rmdir only below a tmpfs: a recursive delete must never run into a mount that failed to go.
    o.cleanup.push(`remove ${dir}`, () => (ram ? rmdir(dir) : rm(dir, { recursive: true, force: true })));
    const room = async (bytes: number) => {
      if (!ram) return;
      await ram(bytes);
      // A page of slack per file and 1 MiB for the manifest, signatures and rounding.
      await mount('tmpfs', dir, 'tmpfs', `size=${bytes + (2 << 20)},mode=0700`);
      o.cleanup.push(`umount ${dir}`, () => umount(dir));
      o.log.info(`copy the bundle from ${r.where} into RAM (${bytes} bytes)`);
    };
    // Seeds serve a chunked bundle only when it would otherwise cross a network (a local medium is read as fast as a seed).
    if (o.seeding && r.local === undefined && r.device === undefined) {
      const t = await readTrusted(r, o.trusted);
      if (t.manifest.chunks?.store) {
        if (t.signedBy) o.log.info(`bundle signature by trusted key ${t.signedBy} verified`);
        const assembly = await assembleBundle(spec, r, t, dir, { ...o, seeding: o.seeding, room });
        return { dir, inRam: ram !== undefined, where: r.where, assembly };
      }
    }
    const b = await bringBundle(r, dir, { trusted: o.trusted, log: o.log, tty: o.tty, room });
    o.log.info(`the bundle from ${r.where} is in RAM: ${b.files} files, ${b.bytes} bytes checked against the manifest`);
    return { dir, inRam: ram !== undefined, where: r.where, ...(r.device ? { device: r.device } : {}) };
  } finally {
    await r.close();
  }
}
