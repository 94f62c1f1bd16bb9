// A bundle's manifest as every reader gets it: WHERE is the bundle directory
// or its manifest.json; with trusted keys the signature is checked over the
// very bytes that are then parsed (nothing unsigned is ever looked at).
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bundleError } from '../errors.ts';
import { parseJson } from '../util/json.ts';
import { Manifest } from './manifest.ts';
import { checkSignature, type TrustedKey } from './sign.ts';

export type Signed = { dir: string; path: string; manifest: Manifest; signedBy?: string };

// readSigned: the manifest of the bundle at WHERE, signature checked first.
export async function readSigned(where: string, trusted: readonly TrustedKey[]): Promise<Signed> {
  const isManifest = basename(where) === 'manifest.json' || (await stat(where).catch(() => undefined))?.isFile();
  const dir = isManifest ? dirname(where) : where;
  const path = isManifest ? where : join(where, 'manifest.json');
  const bytes = await readFile(path).catch(() => undefined);
  if (bytes === undefined) throw bundleError(`bundle manifest ${path} cannot be read: give the bundle directory made by reimage pack`);
  const optional = (f: string) => readFile(f, 'utf8').catch(() => undefined);
  const signedBy = checkSignature(bytes, { sig: await optional(`${path}.sig`), minisig: await optional(`${path}.minisig`) }, trusted, dir);
  const manifest = parseJson(bytes.toString('utf8'), Manifest, `bundle manifest ${path}`, 'rebuild the bundle with reimage pack', bundleError);
  return { dir, path, manifest, ...(signedBy ? { signedBy } : {}) };
}
