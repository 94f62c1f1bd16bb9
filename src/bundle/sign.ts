// Signed bundles: ed25519 (Node's crypto) over the exact bytes of
// manifest.json, which in turn names the size and sha256 of every byte of the
// image. The signature is manifest.json.sig:
//   {"alg":"ed25519","keyId":"<16 hex>","sig":"<base64>"}
// When trusted keys are configured, an unsigned bundle or a signature that
// does not verify against one of them is refused; nothing can turn that off
// but rebuilding the policy.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { bundleError, usageError } from '../errors.ts';

const Sig = z.strictObject({ alg: z.literal('ed25519'), keyId: z.string().regex(/^[0-9a-f]{16}$/), sig: z.string().min(1) });

// keyId: the first 16 hex digits of the sha256 of the raw public key.
export const keyId = (pub: KeyObject) => createHash('sha256').update(pub.export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 16);

export async function keygen(prefix: string): Promise<{ key: string; pub: string; id: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = `${prefix}.key`;
  const pub = `${prefix}.pub`;
  await writeFile(key, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
    throw usageError(`cannot write ${key} (${e.code}): ${e.code === 'EEXIST' ? 'it exists; choose another --out' : 'check the directory'}`);
  });
  await writeFile(pub, publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 });
  return { key, pub, id: keyId(publicKey) };
}

export async function signManifest(manifestBytes: Buffer, keyFile: string): Promise<string> {
  const pem = await readFile(keyFile, 'utf8').catch(() => undefined);
  if (pem === undefined) throw usageError(`signing key ${keyFile} cannot be read: give the .key file made by reimage keygen`);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw usageError(`signing key ${keyFile} is not a private key in PEM: give the .key file made by reimage keygen`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw usageError(`signing key ${keyFile} is ${key.asymmetricKeyType}, not ed25519: make one with reimage keygen`);
  const sig = sign(null, manifestBytes, key).toString('base64');
  return JSON.stringify({ alg: 'ed25519', keyId: keyId(createPublicKey(key)), sig }) + '\n';
}

// loadTrusted: public keys from files or from every *.pub in a directory.
export async function loadTrusted(paths: readonly string[]): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const p of paths) {
    const files = p.endsWith('.pub') ? [p] : (await readdir(p).catch(() => [] as string[])).filter((f) => f.endsWith('.pub')).map((f) => join(p, f));
    for (const f of files) {
      const pem = await readFile(f, 'utf8').catch(() => undefined);
      if (pem === undefined) throw usageError(`trusted key ${f} cannot be read: check the path`);
      try {
        const k = createPublicKey(pem);
        if (k.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
        keys.push(k);
      } catch {
        throw usageError(`trusted key ${f} is not an ed25519 public key in PEM: use the .pub file made by reimage keygen`);
      }
    }
  }
  return keys;
}

// checkSignature: with trusted keys, the manifest bytes must carry a valid signature by one of them.
export function checkSignature(manifestBytes: Buffer, sigText: string | undefined, trusted: KeyObject[], where: string): string | undefined {
  if (trusted.length === 0) return undefined;
  if (sigText === undefined) throw bundleError(`bundle ${where} is not signed but this system trusts only signed bundles: sign it with reimage pack --sign KEY`);
  let parsed: z.infer<typeof Sig>;
  try {
    parsed = Sig.parse(JSON.parse(sigText));
  } catch {
    throw bundleError(`bundle signature ${where}/manifest.json.sig is malformed: sign the bundle again with reimage pack --sign KEY`);
  }
  const key = trusted.find((k) => keyId(k) === parsed.keyId);
  if (!key) throw bundleError(`bundle ${where} is signed by key ${parsed.keyId}, which is not trusted here: sign it with a trusted key or add its .pub to the trusted keys`);
  if (!verify(null, manifestBytes, key, Buffer.from(parsed.sig, 'base64'))) {
    throw bundleError(`bundle ${where}: the signature by key ${parsed.keyId} does not match manifest.json: the manifest was altered; get the bundle again`);
  }
  return parsed.keyId;
}
