// minisign's key and signature formats (jedisct1/minisign), so a bundle can be
// signed with `minisign -Sm manifest.json` and reimage's own signatures can be
// checked with `minisign -Vm manifest.json`. Every line is text; blobs are base64.
//   public key:  "untrusted comment: …"  then  "Ed" ‖ keynum[8] ‖ public key[32]
//   signature:   "untrusted comment: …"  then  alg[2] ‖ keynum[8] ‖ sig[64]
//                "trusted comment: TEXT" then  global sig[64]
// alg "ED" (minisign's default): sig = ed25519(BLAKE2b-512(file)); "Ed" (legacy,
// `minisign -l`): sig = ed25519(file). The global signature is
// ed25519(sig ‖ TEXT), so the trusted comment cannot be altered either.
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export type MinisignKey = { key: KeyObject; num: Buffer };
export type Minisig = { prehashed: boolean; num: Buffer; sig: Buffer; trusted: string; global: Buffer };

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const blob = (line: string | undefined, bytes: number): Buffer | undefined => {
  const s = line?.trim() ?? '';
  if (!B64.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.length === bytes ? b : undefined;
};

// minisignId: a key number as minisign prints it (the little-endian 64-bit number in hex).
export const minisignId = (num: Buffer) => Buffer.from(num).reverse().toString('hex').toUpperCase();

// isMinisignText: a minisign file starts with its untrusted comment.
export const isMinisignText = (text: string) => text.startsWith('untrusted comment:');

// parsePublicKey: a minisign public key file, or undefined when it is not one.
export function parsePublicKey(text: string): MinisignKey | undefined {
  const lines = text.split(/\r?\n/);
  const b = blob(isMinisignText(text) ? lines[1] : lines[0], 42);
  if (!b || b.toString('latin1', 0, 2) !== 'Ed') return undefined;
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b.subarray(10).toString('base64url') }, format: 'jwk' });
  return { key, num: Buffer.from(b.subarray(2, 10)) };
}

// formatPublicKey: PUB (ed25519) as a minisign public key file with key number NUM.
export function formatPublicKey(pub: KeyObject, num: Buffer): string {
  const raw = Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url');
  return `untrusted comment: minisign public key ${minisignId(num)}\n${Buffer.concat([Buffer.from('Ed', 'latin1'), num, raw]).toString('base64')}\n`;
}

// parseSignature: a .minisig file, or undefined when it is malformed.
export function parseSignature(text: string): Minisig | undefined {
  const lines = text.split(/\r?\n/);
  if (!isMinisignText(text) || !lines[2]?.startsWith('trusted comment: ')) return undefined;
  const b = blob(lines[1], 74);
  const global = blob(lines[3], 64);
  const alg = b?.toString('latin1', 0, 2);
  if (!b || !global || (alg !== 'ED' && alg !== 'Ed')) return undefined;
  return { prehashed: alg === 'ED', num: Buffer.from(b.subarray(2, 10)), sig: Buffer.from(b.subarray(10)), trusted: lines[2].slice('trusted comment: '.length), global };
}

const prehash = (message: Buffer) => createHash('blake2b512').update(message).digest();

// verifySignature: both the signature over MESSAGE and the global one over the trusted comment.
export function verifySignature(message: Buffer, s: Minisig, key: KeyObject): boolean {
  return verify(null, s.prehashed ? prehash(message) : message, key, s.sig) && verify(null, Buffer.concat([s.sig, Buffer.from(s.trusted, 'utf8')]), key, s.global);
}

// formatSignature: MESSAGE signed the way `minisign -S` does by default (prehashed).
export function formatSignature(message: Buffer, key: KeyObject, num: Buffer, trusted: string, untrusted: string): string {
  const sig = sign(null, prehash(message), key);
  const global = sign(null, Buffer.concat([sig, Buffer.from(trusted, 'utf8')]), key);
  const head = Buffer.concat([Buffer.from('ED', 'latin1'), num, sig]).toString('base64');
  return `untrusted comment: ${untrusted}\n${head}\ntrusted comment: ${trusted}\n${global.toString('base64')}\n`;
}
