// A bundle directory on a file system this process can read (the bundle's
// own directory, or its manifest.json). It can be used in place (`local`):
// the flow stages the image into RAM itself. Brought elsewhere (fetch --out,
// or the initramfs copying a medium into RAM), each file is copied while
// hashed and checked; a complete, matching copy on hand is kept.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bundleError } from '../errors.ts';
import { hashFile } from '../util/hash.ts';
import { checkpoint } from '../util/interrupt.ts';
import type { Brought, Expect, Reader, SourceEnv, SourceKind } from './types.ts';

// dirReader: the bundle in DIR; with NOLINKS a bundle file that is a symlink is refused (a medium we did not make).
export function dirReader(dir: string, where: string, env: Pick<SourceEnv, 'signal'>, noLinks: boolean): Reader {
  const file = async (name: string) => {
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (st && noLinks && !st.isFile())
      throw bundleError(`the bundle file ${name} on ${where} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: put the file itself into the bundle directory`);
    return st ? path : undefined;
  };
  return {
    where,
    read: async (name) => {
      const path = await file(name);
      return path ? readFile(path).catch(() => undefined) : undefined;
    },
    size: async (name) => {
      const path = await file(name);
      return path ? (await stat(path)).size : undefined;
    },
    bring: async (name, dest, expect, add) => {
      const path = await file(name);
      if (!path) throw bundleError(`bundle file ${join(where, name)} is missing: copy the whole bundle directory`);
      return copyChecked(path, dest, expect, add, env.signal);
    },
    close: async () => {},
  };
}

// copyChecked: SRC to DEST (through DEST.part), hashed on the way and checked against EXPECT.
export async function copyChecked(src: string, dest: string, expect: Expect, add: (n: number) => void, signal?: AbortSignal): Promise<Brought> {
  const on = await hashFile(dest).catch(() => undefined);
  if (on && on.sha256 === expect.sha256 && (expect.size === undefined || on.size === expect.size)) return { ...on, fetched: 0, reused: true };
  const h = createHash('sha256');
  let size = 0;
  const out = await open(`${dest}.part`, 'w');
  try {
    for await (const chunk of createReadStream(src, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
      checkpoint(signal);
      h.update(chunk);
      await out.write(chunk, 0, chunk.length, size);
      size += chunk.length;
      add(chunk.length);
    }
    await out.sync();
  } finally {
    await out.close();
  }
  const sha256 = h.digest('hex');
  if (sha256 !== expect.sha256 || (expect.size !== undefined && size !== expect.size)) {
    await rm(`${dest}.part`, { force: true });
    throw bundleError(
      `bundle file ${src} is ${size} bytes with sha256 ${sha256} but the manifest says ${expect.size ?? '?'} bytes with sha256 ${expect.sha256}: the copy is corrupt or altered; copy the bundle again`,
      {
        expected: expect.sha256,
        actual: sha256,
      },
    );
  }
  await rename(`${dest}.part`, dest);
  return { sha256, size, fetched: size, reused: false };
}

export const dirKind = {
  forms: 'a bundle directory (or its manifest.json)',
  // Anything that is not a URL: a path, checked when it is read.
  matches: (spec) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(spec),
  open: async (spec, env) => {
    const isManifest = basename(spec) === 'manifest.json' || (await stat(spec).catch(() => undefined))?.isFile();
    const dir = isManifest ? dirname(spec) : spec;
    return { ...dirReader(dir, dir, env, false), local: spec };
  },
} satisfies SourceKind;
