// Signed bundles: ed25519 (Node's crypto) over the exact bytes of
// manifest.json, which in turn names the size and sha256 of every byte of the
// image. Two signature files, either or both:
//   manifest.json.sig      {"alg":"ed25519","keyId":"<16 hex>","sig":"<base64>"}
//   manifest.json.minisig  minisign's format (see minisign.ts): `minisign -Sm
//                          manifest.json` makes one, `minisign -V` checks ours
// `reimage pack --sign` writes both. Trusted keys are PEM (reimage keygen) or
// minisign public keys. When trusted keys are configured, an unsigned bundle,
// a malformed signature or one by a trusted key that does not verify is
// refused; nothing can turn that off but rebuilding the policy. A trust path
// that yields no key is an error of its own, never "no keys, so unsigned is fine".
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { bundleError, usageError } from '../errors.ts';
import * as minisign from './minisign.ts';

const Sig = z.strictObject({ alg: z.literal('ed25519'), keyId: z.string().regex(/^[0-9a-f]{16}$/), sig: z.string().min(1) });

// keyId: the first 16 hex digits of the sha256 of the raw public key.
export const keyId = (pub: KeyObject) =>
  createHash('sha256')
    .update(pub.export({ format: 'der', type: 'spki' }))
    .digest('hex')
    .slice(0, 16);

// A trusted key: ID as its owner knows it (reimage's key id, or minisign's),
// NUM the 8-byte key number minisign signatures name it by.
export type TrustedKey = { key: KeyObject; id: string; num: Buffer };

const pemTrusted = (key: KeyObject): TrustedKey => ({ key, id: keyId(key), num: Buffer.from(keyId(key), 'hex') });

export async function keygen(prefix: string): Promise<{ key: string; pub: string; minisignPub: string; id: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = `${prefix}.key`;
  const pub = `${prefix}.pub`;
  const minisignPub = `${prefix}.minisign.pub`;
  await writeFile(key, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
    throw usageError(`cannot write ${key} (${e.code}): ${e.code === 'EEXIST' ? 'it exists; choose another --out' : 'check the directory'}`);
  });
  await writeFile(pub, publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 });
  // The same public key in minisign's format, for `minisign -V` (trusting both files is trusting one key).
  await writeFile(minisignPub, minisign.formatPublicKey(publicKey, pemTrusted(publicKey).num), { mode: 0o644 });
  return { key, pub, minisignPub, id: keyId(publicKey) };
}

export type Signatures = { sig?: string; minisig?: string };

export async function signManifest(manifestBytes: Buffer, keyFile: string): Promise<Required<Signatures>> {
  const pem = await readFile(keyFile, 'utf8').catch(() => undefined);
  if (pem === undefined) throw usageError(`signing key ${keyFile} cannot be read: give the .key file made by reimage keygen`);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw usageError(`signing key ${keyFile} is not a private key in PEM: give the .key file made by reimage keygen`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw usageError(`signing key ${keyFile} is ${key.asymmetricKeyType}, not ed25519: make one with reimage keygen`);
  const t = pemTrusted(createPublicKey(key));
  return {
    sig: JSON.stringify({ alg: 'ed25519', keyId: t.id, sig: sign(null, manifestBytes, key).toString('base64') }) + '\n',
    minisig: minisign.formatSignature(manifestBytes, key, t.num, `timestamp:${Math.floor(Date.now() / 1000)}\tfile:manifest.json\thashed`, `signature from reimage key ${t.id}`),
  };
}

const FIX = 'give a .pub file made by reimage keygen or minisign -G, or a directory of them';

// loadTrusted: public keys (PEM or minisign) from the files and directories
// the operator named (--trust). Trust fails closed: every path must yield at
// least one key; a missing path, a private key, an empty directory or one
// without *.pub files is a usage error, never "accept unsigned".
export async function loadTrusted(paths: readonly string[]): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const p of paths) {
    const st = await stat(p).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error) {
      throw usageError(st.code === 'ENOENT' ? `trusted key ${p} does not exist: ${FIX}` : `trusted key ${p} cannot be read (${st.code}): ${FIX}`);
    }
    if (st.isDirectory()) {
      const found = await loadKeyDir(p);
      if (found.length === 0) throw usageError(`trusted key directory ${p} holds no *.pub key file, so it trusts no key: ${FIX}`);
      keys.push(...found);
    } else {
      keys.push(await loadKeyFile(p));
    }
  }
  return uniqueKeys(keys);
}

// uniqueKeys: each key once, however many files hold it (fleet.pub and fleet.minisign.pub are one key).
function uniqueKeys(keys: readonly TrustedKey[]): TrustedKey[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const der = k.key.export({ format: 'der', type: 'spki' }).toString('hex');
    if (seen.has(der)) return false;
    seen.add(der);
    return true;
  });
}

// loadKeyDir: every *.pub file in DIR (none: an empty list); a directory that does not exist has none.
export async function loadKeyDir(dir: string): Promise<TrustedKey[]> {
  const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw usageError(`trusted key directory ${dir} cannot be read (${e.code}): ${FIX}`);
  });
  const keys: TrustedKey[] = [];
  for (const f of names.filter((n) => n.endsWith('.pub')).sort()) keys.push(await loadKeyFile(join(dir, f)));
  return uniqueKeys(keys);
}

// loadKeyFile: one public key, whatever the file's name; a private key or anything else is refused.
async function loadKeyFile(f: string): Promise<TrustedKey> {
  const st = await stat(f).catch(() => undefined);
  // Never read a FIFO or a device: it could block or be endless.
  if (st && !st.isFile()) throw usageError(`trusted key ${f} is not a regular file: ${FIX}`);
  const text = await readFile(f, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw usageError(`trusted key ${f} cannot be read (${e.code}): ${FIX}`);
  });
  if (text.trim() === '') throw usageError(`trusted key ${f} is empty: ${FIX}`);
  if (/PRIVATE KEY-----|^untrusted comment: .*secret key/m.test(text)) {
    throw usageError(`trusted key ${f} is a private key, not a public one: give its .pub (never copy a private key onto a machine)`);
  }
  if (minisign.isMinisignText(text)) {
    const m = minisign.parsePublicKey(text);
    if (!m) throw usageError(`trusted key ${f} is not a valid minisign public key: ${FIX}`);
    // A key made by reimage keygen is named by its reimage id in either file (one id, one byte order);
    // a key made by minisign -G by minisign's own id.
    return { ...m, id: m.num.toString('hex') === keyId(m.key) ? keyId(m.key) : minisign.minisignId(m.num) };
  }
  try {
    const k = createPublicKey(text);
    if (k.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    return pemTrusted(k);
  } catch {
    throw usageError(`trusted key ${f} is not an ed25519 public key in PEM or minisign format: ${FIX}`);
  }
}

// checkSignature: with trusted keys, the manifest bytes must carry a signature
// that verifies against one of them. Every signature file present must be well
// formed, and one by a trusted key must verify: a mismatch means an altered
// manifest, whatever the other file says. Returns the signer's key id.
export function checkSignature(manifestBytes: Buffer, sigs: Signatures, trusted: readonly TrustedKey[], where: string): string | undefined {
  if (trusted.length === 0) return undefined;
  if (sigs.sig === undefined && sigs.minisig === undefined) {
    throw bundleError(`bundle ${where} is not signed but this system trusts only signed bundles: sign it with reimage pack --sign KEY or minisign -Sm manifest.json`);
  }
  const altered = (id: string, file: string) => bundleError(`bundle ${where}: the signature by key ${id} in ${file} does not match manifest.json: the manifest was altered; get the bundle again`);
  const untrusted: string[] = [];
  let signer: string | undefined;
  if (sigs.sig !== undefined) {
    let parsed: z.infer<typeof Sig>;
    try {
      parsed = Sig.parse(JSON.parse(sigs.sig));
    } catch {
      throw bundleError(`bundle signature ${where}/manifest.json.sig is malformed: sign the bundle again with reimage pack --sign KEY`);
    }
    const t = trusted.find((k) => keyId(k.key) === parsed.keyId);
    if (!t) untrusted.push(parsed.keyId);
    else if (!verify(null, manifestBytes, t.key, Buffer.from(parsed.sig, 'base64'))) throw altered(parsed.keyId, 'manifest.json.sig');
    else signer = t.id;
  }
  if (sigs.minisig !== undefined) {
    const m = minisign.parseSignature(sigs.minisig);
    if (!m) throw bundleError(`bundle signature ${where}/manifest.json.minisig is not in minisign's format: sign manifest.json again with minisign -Sm`);
    const t = trusted.find((k) => k.num.equals(m.num));
    if (!t) untrusted.push(minisign.minisignId(m.num));
    else if (!minisign.verifySignature(manifestBytes, m, t.key)) throw altered(t.id, 'manifest.json.minisig');
    else signer = t.id;
  }
  if (!signer) {
    throw bundleError(`bundle ${where} is signed by key ${untrusted.join(' and ')}, which is not trusted here: sign it with a trusted key or add its .pub to the trusted keys`);
  }
  return signer;
}
