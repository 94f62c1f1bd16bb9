// Loads a bundle: manifest.json validated against the schema, the image file
// present with the size the manifest states, and its magic bytes agreeing with
// the manifest's codec. Hashes are checked by the caller (verify, stage).
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { detect } from '../codecs/index.ts';
import { bundleError } from '../errors.ts';
import { parseList, type ListEntry } from '../retention/list.ts';
import { Manifest } from './manifest.ts';
import type { TrustedKey } from './sign.ts';
import { readSigned } from './signed.ts';
import { createHash } from 'node:crypto';
import { parseBmap, type BlockMap } from '../bmap/format.ts';
import { ASSEMBLED_FILE, asAssembled, asCompacted, readCompactSum } from './chunked.ts';

export type Bundle = {
  dir: string;
  manifest: Manifest;
  imagePath: string;
  retention?: { name: string; entries: ListEntry[]; bytes: Buffer };
  // The block map, read into RAM and checked against the manifest's sha256.
  bmap?: BlockMap;
  // The key id that signed the manifest, when trusted keys were given.
  signedBy?: string;
};

// loadBundle: DIR is the bundle directory or its manifest.json. With trusted
// keys, the signature is checked over the very bytes that are then parsed.
export async function loadBundle(where: string, trusted: TrustedKey[] = []): Promise<Bundle> {
  const { dir, manifest: signed, signedBy } = await readSigned(where, trusted);
  // A chunked bundle fetched with --seed holds the assembled raw image instead of the compressed one.
  const packed = await stat(join(dir, signed.image.file)).catch(() => undefined);
  const assembled = !packed?.isFile() && signed.chunks !== undefined && (await stat(join(dir, ASSEMBLED_FILE)).catch(() => undefined))?.isFile() === true;
  const compacted = !packed?.isFile() && !assembled && signed.chunks !== undefined ? await readCompactSum(dir) : undefined;
  const manifest = assembled ? asAssembled(signed) : compacted ? asCompacted(signed, compacted) : signed;
  const imagePath = join(dir, manifest.image.file);
  const st = await stat(imagePath).catch(() => undefined);
  if (!st?.isFile()) throw bundleError(`bundle image ${imagePath} is missing: copy the whole bundle directory`);
  if (st.size !== manifest.image.size) {
    throw bundleError(`bundle image ${imagePath} is ${st.size} bytes but the manifest says ${manifest.image.size}: the copy is incomplete or altered; copy the bundle again`);
  }
  if (!assembled) await checkCodec(imagePath, manifest);
  const retention = manifest.retention ? await loadRetention(dir, manifest.retention) : undefined;
  const bmap = manifest.bmap ? await loadBmap(dir, manifest) : undefined;
  return { dir, manifest, imagePath, ...(retention ? { retention } : {}), ...(bmap ? { bmap } : {}), ...(signedBy ? { signedBy } : {}) };
}

// loadRetention: the bundle's retention list, its bytes hashed against the
// (signed) manifest before they are parsed: an edited list is refused, never used.
async function loadRetention(dir: string, r: NonNullable<Manifest['retention']>): Promise<NonNullable<Bundle['retention']>> {
  const path = join(dir, r.file);
  const bytes = await readFile(path).catch(() => undefined);
  if (!bytes) throw bundleError(`bundle retention list ${path} is missing: copy the whole bundle directory`);
  const sum = sha256(bytes);
  if (sum !== r.sha256) {
    throw bundleError(
      `bundle retention list ${path} has sha256 ${sum} but the manifest says ${r.sha256}: the list was altered after packing; get the bundle again, or pack it again with reimage pack --retain LIST (and --sign)`,
      { expected: r.sha256, actual: sum },
    );
  }
  return { name: `bundle:${r.file}`, entries: parseList(bytes, `bundle:${r.file}`), bytes };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// loadBmap: the bundle's block map, its bytes hashed against the (signed) manifest, parsed, and fit for the raw image.
async function loadBmap(dir: string, m: Manifest): Promise<BlockMap> {
  const path = join(dir, m.bmap!.file);
  const bytes = await readFile(path).catch(() => undefined);
  if (!bytes) throw bundleError(`bundle block map ${path} is missing: copy the whole bundle directory`);
  const sum = sha256(bytes);
  if (sum !== m.bmap!.sha256) throw bundleError(`bundle block map ${path} has sha256 ${sum} but the manifest says ${m.bmap!.sha256}: the copy is corrupt or altered; copy the bundle again`);
  const map = parseBmap(bytes, path);
  if (map.imageSize !== m.raw.size)
    throw bundleError(`bundle block map ${path} is for a ${map.imageSize}-byte image but the manifest's raw image is ${m.raw.size} bytes: rebuild the bundle with reimage pack`);
  return map;
}

// checkCodec: the image's magic bytes must agree with the manifest's codec.
export async function checkCodec(file: string, manifest: Manifest): Promise<void> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(16);
  try {
    await fh.read(head, 0, 16, 0);
  } finally {
    await fh.close();
  }
  const found = detect(head);
  if (found !== manifest.image.codec) {
    throw bundleError(`bundle image ${file} looks like ${found} but the manifest says ${manifest.image.codec}: rebuild the bundle with reimage pack`);
  }
}
