import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSignature, keygen, keyId, loadKeyDir, loadTrusted, signManifest, type TrustedKey } from '../../../src/bundle/sign.ts';
import { formatPublicKey, formatSignature, minisignId, parsePublicKey, parseSignature } from '../../../src/bundle/minisign.ts';

const pair = () => generateKeyPairSync('ed25519');
const dir = mkdtempSync(join(tmpdir(), 'reimage-sign-'));
const a = pair();
const b = pair();
const keyFile = join(dir, 'a.key');
writeFileSync(keyFile, a.privateKey.export({ format: 'pem', type: 'pkcs8' }));
writeFileSync(join(dir, 'a.pub'), a.publicKey.export({ format: 'pem', type: 'spki' }));
const manifest = Buffer.from('{"format":"reimage-bundle/1"}\n');
const trustA = async (): Promise<TrustedKey[]> => loadTrusted([join(dir, 'a.pub')]);

test('a signature by a trusted key verifies and names the key', async () => {
	const sig = await signManifest(manifest, keyFile);
	assert.is(checkSignature(manifest, sig, await trustA(), 'b'), keyId(a.publicKey));
	assert.is(checkSignature(manifest, { sig: sig.sig }, await trustA(), 'b'), keyId(a.publicKey), 'reimage format alone');
	assert.is(checkSignature(manifest, { minisig: sig.minisig }, await trustA(), 'b'), keyId(a.publicKey), 'minisign format alone');
	assert.is(checkSignature(manifest, {}, [], 'b'), undefined, 'no trusted keys: no requirement');
});

test('unsigned, altered, untrusted and malformed are refused with exit 3', async () => {
	const sig = await signManifest(manifest, keyFile);
	const altered = Buffer.from('{"format":"reimage-bundle/1","x":1}\n');
	const byB = JSON.stringify({ alg: 'ed25519', keyId: keyId(b.publicKey), sig: sign(null, manifest, b.privateKey).toString('base64') });
	const cases: [Buffer, { sig?: string; minisig?: string }, RegExp][] = [
		[manifest, {}, /is not signed but this system trusts only signed bundles/],
		[altered, sig, /in manifest\.json\.sig does not match manifest\.json: the manifest was altered/],
		[altered, { minisig: sig.minisig }, /in manifest\.json\.minisig does not match manifest\.json: the manifest was altered/],
		// A valid signature in one file does not excuse a mismatch in the other.
		[manifest, { sig: sig.sig, minisig: (await signManifest(altered, keyFile)).minisig }, /minisig does not match/],
		[manifest, { sig: byB }, /not trusted here/],
		[manifest, { sig: '{"alg":"rsa"}' }, /malformed/],
		[manifest, { minisig: 'untrusted comment: x\nnot base64!\n' }, /not in minisign's format/],
		// The trusted comment is covered by the global signature.
		[manifest, { minisig: sig.minisig.replace('file:manifest.json', 'file:other.json') }, /minisig does not match/],
	];
	for (const [bytes, s, re] of cases) {
		try {
			checkSignature(bytes, s, await trustA(), 'b');
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

test('minisign formats: a public key and a signature round-trip; legacy (unhashed) signatures verify too', async () => {
	const num = Buffer.from('d0ae46b31a8f9656', 'hex');
	const pubText = formatPublicKey(b.publicKey, num);
	assert.match(pubText, /^untrusted comment: minisign public key 56968F1AB346AED0\n/, 'the id as minisign prints it');
	const parsed = parsePublicKey(pubText)!;
	assert.ok(parsed.num.equals(num));
	assert.equal(parsed.key.export({ format: 'jwk' }), b.publicKey.export({ format: 'jwk' }));
	writeFileSync(join(dir, 'b.pub'), pubText);
	const trusted = await loadTrusted([join(dir, 'b.pub')]);
	assert.is(trusted[0]!.id, minisignId(num));
	const minisig = formatSignature(manifest, b.privateKey, num, 'timestamp:1\tfile:manifest.json\thashed', 'x');
	assert.is(checkSignature(manifest, { minisig }, trusted, 'b'), '56968F1AB346AED0');
	// Legacy: alg "Ed", the file itself signed.
	const s = sign(null, manifest, b.privateKey);
	const legacy = `untrusted comment: x\n${Buffer.concat([Buffer.from('Ed'), num, s]).toString('base64')}\ntrusted comment: t\n${sign(null, Buffer.concat([s, Buffer.from('t')]), b.privateKey).toString('base64')}\n`;
	assert.is(parseSignature(legacy)!.prehashed, false);
	assert.is(checkSignature(manifest, { minisig: legacy }, trusted, 'b'), '56968F1AB346AED0');
	writeFileSync(join(dir, 'bad.pub'), 'untrusted comment: minisign public key 00\nRWQ=\n');
	await loadTrusted([join(dir, 'bad.pub')]).then(
		() => assert.unreachable(),
		(e: Error) => assert.match(e.message, /is not a valid minisign public key/),
	);
});

test('a keygen key trusted through both of its files is one key with one id, in one byte order', async () => {
	const d = mkdtempSync(join(tmpdir(), 'reimage-keyid-'));
	const k = await keygen(join(d, 'fleet'));
	const { rmSync } = await import('node:fs');
	rmSync(k.key);
	const keys = await loadKeyDir(d);
	assert.equal(
		keys.map((x) => x.id),
		[k.id],
	);
	assert.equal(
		(await loadTrusted([k.pub, k.minisignPub])).map((x) => x.id),
		[k.id],
	);
	assert.equal(
		(await loadTrusted([k.minisignPub])).map((x) => x.id),
		[k.id],
	);
});

test('a --trust that yields no key is a usage error (exit 2), never "accept unsigned"', async () => {
	const empty = mkdtempSync(join(tmpdir(), 'reimage-trust-empty-'));
	const junk = mkdtempSync(join(tmpdir(), 'reimage-trust-junk-'));
	writeFileSync(join(junk, 'README'), 'keys go here\n');
	writeFileSync(join(junk, 'fleet.key'), a.privateKey.export({ format: 'pem', type: 'pkcs8' }));
	const privMinisign = join(junk, 'site.key');
	writeFileSync(privMinisign, 'untrusted comment: minisign encrypted secret key\nRWRTY0Iy...\n');
	const unreadable = join(mkdtempSync(join(tmpdir(), 'reimage-trust-locked-')), 'locked.pub');
	writeFileSync(unreadable, a.publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o000 });
	const cases: [string, RegExp][] = [
		[join(dir, 'nope.pub'), /trusted key .*nope\.pub does not exist: give a \.pub file/],
		[join(dir, 'nope'), /does not exist/],
		[keyFile, /trusted key .*a\.key is a private key, not a public one/],
		[privMinisign, /is a private key/],
		[empty, /trusted key directory .* holds no \*\.pub key file, so it trusts no key/],
		[join(dir, 'empty.pub'), /is empty/],
		['/dev/null', /is not a regular file/],
	];
	writeFileSync(join(dir, 'empty.pub'), '');
	// Root reads any file: only an unprivileged run sees EACCES.
	if (process.getuid?.() !== 0) cases.push([unreadable, /cannot be read \(EACCES\)/]);
	for (const [p, re] of cases) {
		await loadTrusted([p]).then(
			() => assert.unreachable(`${p} yielded a key`),
			(e: Error & { code: number }) => {
				assert.is(e.code, 2, p);
				assert.match(e.message, re);
			},
		);
	}
	// A directory of non-key files, and a private key renamed .pub inside a directory.
	await loadTrusted([junk]).then(
		() => assert.unreachable(),
		(e: Error & { code: number }) => assert.ok(e.code === 2 && /holds no \*\.pub/.test(e.message), e.message),
	);
	const renamed = mkdtempSync(join(tmpdir(), 'reimage-trust-renamed-'));
	writeFileSync(join(renamed, 'fleet.pub'), a.privateKey.export({ format: 'pem', type: 'pkcs8' }));
	await loadTrusted([renamed]).then(
		() => assert.unreachable(),
		(e: Error) => assert.match(e.message, /fleet\.pub is a private key/),
	);
	// One good path does not excuse a bad one next to it.
	await loadTrusted([join(dir, 'a.pub'), empty]).then(
		() => assert.unreachable(),
		(e: Error) => assert.match(e.message, /holds no/),
	);
});

test.run();
