import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSignature, keyId, loadTrusted, signManifest } from '../../../src/bundle/sign.ts';

const pair = () => generateKeyPairSync('ed25519');
const dir = mkdtempSync(join(tmpdir(), 'reimage-sign-'));
const a = pair();
const b = pair();
const keyFile = join(dir, 'a.key');
writeFileSync(keyFile, a.privateKey.export({ format: 'pem', type: 'pkcs8' }));
writeFileSync(join(dir, 'a.pub'), a.publicKey.export({ format: 'pem', type: 'spki' }));
const manifest = Buffer.from('{"format":"reimage-bundle/1"}\n');

test('a signature by a trusted key verifies and names the key', async () => {
  const sig = await signManifest(manifest, keyFile);
  assert.is(checkSignature(manifest, sig, [a.publicKey], 'b'), keyId(a.publicKey));
  assert.is(checkSignature(manifest, undefined, [], 'b'), undefined, 'no trusted keys: no requirement');
});

test('unsigned, altered, untrusted and malformed are refused with exit 3', async () => {
  const sig = await signManifest(manifest, keyFile);
  const cases: [Buffer, string | undefined, RegExp][] = [
    [manifest, undefined, /is not signed but this system trusts only signed bundles/],
    [Buffer.from('{"format":"reimage-bundle/1","x":1}\n'), sig, /does not match manifest\.json: the manifest was altered/],
    [manifest, JSON.stringify({ alg: 'ed25519', keyId: keyId(b.publicKey), sig: sign(null, manifest, b.privateKey).toString('base64') }), /not trusted here/],
    [manifest, '{"alg":"rsa"}', /malformed/],
  ];
  for (const [bytes, s, re] of cases) {
    try {
      checkSignature(bytes, s, [a.publicKey], 'b');
      assert.unreachable();
    } catch (e) {
      assert.is((e as { code: number }).code, 3);
      assert.match((e as Error).message, re);
    }
  }
});

test('trusted keys load from a file or every .pub in a directory; a non-ed25519 key is refused', async () => {
  assert.is((await loadTrusted([dir])).length, 1);
  assert.is((await loadTrusted([join(dir, 'a.pub')])).length, 1);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  writeFileSync(join(dir, 'rsa.pub'), rsa.publicKey.export({ format: 'pem', type: 'spki' }));
  await loadTrusted([join(dir, 'rsa.pub')]).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /not an ed25519 public key/),
  );
});

test.run();
