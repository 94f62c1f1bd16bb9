// A bundle brought from any source into a local directory, trust first: the
// manifest and its signatures are read and the signature checked over the
// very bytes that are then parsed, before any other file is asked for. Then
// every file the manifest names (and nothing else) comes over, hashed on the
// way and checked against the manifest's sha256; the signatures and the
// manifest are written last, so a directory with a manifest.json is whole.
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Manifest } from '../bundle/manifest.ts';
import { checkSignature, type TrustedKey } from '../bundle/sign.ts';
import { bundleError } from '../errors.ts';
import { parseJson } from '../util/json.ts';
import type { Log } from '../util/log.ts';
import { createProgress } from '../util/progress.ts';
import type { Expect, Reader } from './types.ts';

export type BringOptions = {
  trusted: readonly TrustedKey[];
  log: Log;
  tty: boolean;
  // Called with the bytes about to come, before the first one does (the RAM check and the tmpfs).
  room?: (bytes: number) => Promise<void>;
};

export type BroughtBundle = { manifest: Manifest; signedBy?: string; files: number; bytes: number; fetched: number; reused: number };

export const SIGS = ['manifest.json.sig', 'manifest.json.minisig'] as const;
const UNKNOWN_SIZE = 16 << 20;

// bundleFiles: every file the manifest names, with what it must hash to.
// A name that would land outside the directory, or on the manifest, or twice, is refused.
export function bundleFiles(m: Manifest): { name: string; expect: Expect }[] {
  const files = [
    { name: m.image.file, expect: { sha256: m.image.sha256, size: m.image.size } },
    ...(m.bmap ? [{ name: m.bmap.file, expect: { sha256: m.bmap.sha256 } }] : []),
    ...(m.retention ? [{ name: m.retention.file, expect: { sha256: m.retention.sha256 } }] : []),
  ];
  const seen = new Set<string>();
  for (const f of files) {
    if (f.name === '.' || f.name === '..' || f.name.startsWith('manifest.json') || f.name.endsWith('.part') || f.name.endsWith('.part.json') || seen.has(f.name)) {
      throw bundleError(
        `bundle manifest names the file "${f.name}", which cannot be a bundle file (a directory, the manifest, a partial download, or named twice): rebuild the bundle with reimage pack`,
      );
    }
    seen.add(f.name);
  }
  return files;
}

// readTrusted: the manifest and signatures from R, the signature checked, the manifest parsed.
export async function readTrusted(r: Reader, trusted: readonly TrustedKey[]): Promise<{ bytes: Buffer; sigs: (Buffer | undefined)[]; manifest: Manifest; signedBy?: string }> {
  const bytes = await r.read('manifest.json');
  if (bytes === undefined) throw bundleError(`the bundle manifest (manifest.json) at ${r.where} cannot be read: give the bundle directory made by reimage pack`);
  const sigs = await Promise.all(SIGS.map((s) => r.read(s)));
  const signedBy = checkSignature(bytes, { sig: sigs[0]?.toString('utf8'), minisig: sigs[1]?.toString('utf8') }, trusted, r.where);
  const manifest = parseJson(bytes.toString('utf8'), Manifest, `bundle manifest ${r.where}`, 'rebuild the bundle with reimage pack', bundleError);
  return { bytes, sigs, manifest, ...(signedBy ? { signedBy } : {}) };
}

// bringBundle: the bundle of R into DEST, checked; returns what came and what was already on hand.
export async function bringBundle(r: Reader, dest: string, o: BringOptions): Promise<BroughtBundle> {
  const t = await readTrusted(r, o.trusted);
  if (t.signedBy) o.log.info(`bundle signature by trusted key ${t.signedBy} verified`);
  const files = bundleFiles(t.manifest);
  // The manifest states the image's size; the others come from the source, or a generous guess when it cannot tell.
  const sizes = await Promise.all(files.map(async (f) => f.expect.size ?? (await r.size(f.name)) ?? UNKNOWN_SIZE));
  const total = sizes.reduce((a, b) => a + b, 0);
  await o.room?.(total + t.bytes.length);
  await dropOtherManifest(dest, t.bytes);
  const progress = createProgress(`fetch ${r.where}`, total, o.log, o.tty);
  let fetched = 0;
  let reused = 0;
  try {
    for (const f of files) {
      const got = await r.bring(f.name, join(dest, f.name), f.expect, progress.add);
      fetched += got.fetched;
      if (got.reused) {
        reused++;
        progress.add(got.size);
      }
    }
  } finally {
    progress.end();
  }
  await writeTrusted(dest, t);
  return { manifest: t.manifest, ...(t.signedBy ? { signedBy: t.signedBy } : {}), files: files.length, bytes: total, fetched, reused };
}

// dropOtherManifest: a manifest of another version left in DEST goes first: DEST must never pair it with new files.
export async function dropOtherManifest(dest: string, bytes: Buffer): Promise<void> {
  const old = await readFile(join(dest, 'manifest.json')).catch(() => undefined);
  if (old && !old.equals(bytes)) for (const f of ['manifest.json', ...SIGS]) await rm(join(dest, f), { force: true });
}

// writeTrusted: the signatures, then the manifest (renamed into place): last, so a directory with a manifest.json is whole.
export async function writeTrusted(dest: string, t: { bytes: Buffer; sigs: (Buffer | undefined)[] }): Promise<void> {
  for (const [i, s] of SIGS.entries()) {
    const b = t.sigs[i];
    if (b) await writeFile(join(dest, s), b);
  }
  await writeFile(join(dest, 'manifest.json.tmp'), t.bytes);
  await rename(join(dest, 'manifest.json.tmp'), join(dest, 'manifest.json'));
}
