// Checks a bundle's bytes against its manifest: the compressed size and sha256,
// then (when asked) the raw size and sha256 by decompressing to nowhere.
import { bundleError } from '../errors.ts';
import { hashFile } from '../util/hash.ts';
import { checkpoint } from '../util/interrupt.ts';
import { createHash } from 'node:crypto';
import { decodeChecked } from '../image/decode.ts';
import { RawMismatch, REBUILD } from '../image/mismatch.ts';
import type { BlockMap } from '../bmap/format.ts';
import type { Manifest } from './manifest.ts';
import type { Tick } from '../util/progress.ts';

// checkPacked: the compressed file's sha256 and size against the manifest.
export function checkPacked(file: string, got: { sha256: string; size: number }, m: Manifest): void {
  if (got.size !== m.image.size) throw bundleError(`bundle image ${file} is ${got.size} bytes but the manifest says ${m.image.size}: copy the bundle again`);
  if (got.sha256 !== m.image.sha256) {
    throw bundleError(`bundle image ${file} has sha256 ${got.sha256} but the manifest says ${m.image.sha256}: the image is corrupt or altered; copy the bundle again`);
  }
}

// verifyPacked: the compressed file hashed and checked (TICK: progress).
export async function verifyPacked(file: string, m: Manifest, tick?: Tick): Promise<void> {
  checkPacked(file, await hashFile(file, undefined, undefined, tick), m);
}

// verifyRaw: decompress and check the raw image without writing it anywhere:
// against the block map's ranges (as the write does) and, in order, against
// the manifest's raw sha256 of the whole image.
export async function verifyRaw(file: string, m: Manifest, map: BlockMap | undefined, signal?: AbortSignal, tick?: Tick): Promise<void> {
  const whole = createHash('sha256');
  await decodeChecked(file, m, map, async (block) => {
    checkpoint(signal);
    whole.update(block);
    tick?.(block.length);
  });
  const sha256 = whole.digest('hex');
  if (sha256 !== m.raw.sha256) throw new RawMismatch(`the decompressed image has sha256 ${sha256} but the manifest says ${m.raw.sha256}: ${REBUILD}`);
}
