// Checks a bundle's bytes against its manifest: the compressed size and sha256,
// then (when asked) the raw size and sha256 by decompressing to nowhere.
import { bundleError } from '../errors.ts';
import { codecs } from '../codecs/index.ts';
import { hashFile } from '../util/hash.ts';
import { decodeVerified } from '../stages/pipeline.ts';
import type { Manifest } from './manifest.ts';

// checkPacked: the compressed file's sha256 and size against the manifest.
export function checkPacked(file: string, got: { sha256: string; size: number }, m: Manifest): void {
  if (got.size !== m.image.size) throw bundleError(`bundle image ${file} is ${got.size} bytes but the manifest says ${m.image.size}: copy the bundle again`);
  if (got.sha256 !== m.image.sha256) {
    throw bundleError(`bundle image ${file} has sha256 ${got.sha256} but the manifest says ${m.image.sha256}: the image is corrupt or altered; copy the bundle again`);
  }
}

export async function verifyPacked(file: string, m: Manifest): Promise<void> {
  checkPacked(file, await hashFile(file), m);
}

// verifyRaw: decompress and hash the raw image without writing it anywhere.
export async function verifyRaw(file: string, m: Manifest): Promise<void> {
  await decodeVerified(codecs[m.image.codec].decode(file), m, async () => {});
}
