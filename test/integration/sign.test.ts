// Signed bundles with the built binary: keygen, pack --sign, verify/run --trust.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { MOUNTS, reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, exec, sha256, tmpDir } from '../helpers/sys.ts';

const t = suite('signed bundles');
const dir = tmpDir('reimage-keys-');
const prefix = path.join(dir, 'fleet');
const other = path.join(dir, 'other');

function signedBundle(key: string): string {
	const out = path.join(tmpDir('reimage-signed-'), 'bundle');
	const r = reimage(['pack', fixtures().newImg, '--out', out, '--sign', key, ...MOUNTS.flatMap((m) => ['--mount', m])]);
	assert.is(r.status, 0, describe(r));
	return out;
}

/** The bundle with both signature files removed. */
function unsign(b: string): string {
	for (const f of ['manifest.json.sig', 'manifest.json.minisig']) fs.rmSync(path.join(b, f));
	return b;
}

const minisign = (args: string[]) => {
	const r = exec('minisign', args);
	assert.is(r.status, 0, describe(r));
	return r.stdout;
};

t('keygen makes a 0600 private key and a public key; it never overwrites', () => {
	const r = reimage(['keygen', '--out', prefix]);
	assert.is(r.status, 0, describe(r));
	assert.match(r.stdout, /^key [0-9a-f]{16}: private /);
	assert.is(fs.statSync(`${prefix}.key`).mode & 0o777, 0o600);
	assert.is(reimage(['keygen', '--out', prefix]).status, 2);
	assert.is(reimage(['keygen', '--out', other]).status, 0);
});

t('verify --trust accepts a bundle signed by a trusted key', () => {
	const b = signedBundle(`${prefix}.key`);
	const r = reimage(['verify', '--bundle', b, '--trust', `${prefix}.pub`]);
	assert.is(r.status, 0, describe(r));
	assert.match(r.stdout, /signed by trusted key [0-9a-f]{16}/);
	assert.is(reimage(['verify', '--bundle', b, '--trust', dir]).status, 0, 'a directory of trusted keys');
});

t('an altered manifest, an untrusted signer and an unsigned bundle are refused', () => {
	const b = signedBundle(`${prefix}.key`);
	const m = path.join(b, 'manifest.json');
	fs.writeFileSync(m, fs.readFileSync(m, 'utf8').replace('"tool": "reimage', '"tool": "REimage'));
	const altered = reimage(['verify', '--bundle', b, '--trust', `${prefix}.pub`]);
	assert.is(altered.status, 3, describe(altered));
	assert.match(altered.stderr, /signature .* does not match manifest\.json/);
	const wrong = reimage(['verify', '--bundle', signedBundle(`${other}.key`), '--trust', `${prefix}.pub`]);
	assert.is(wrong.status, 3);
	assert.match(wrong.stderr, /not trusted here/);
	const unsigned = unsign(signedBundle(`${prefix}.key`));
	const u = reimage(['verify', '--bundle', unsigned, '--trust', `${prefix}.pub`]);
	assert.is(u.status, 3);
	assert.match(u.stderr, /is not signed/);
});

t('run --trust with an unsigned bundle: refused before anything is written', async () => {
	const unsigned = unsign(signedBundle(`${prefix}.key`));
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const r = reimage(['run', '--bundle', unsigned, '--target', dev, '--retain', fixtures().list, '--trust', `${prefix}.pub`, '--yes']);
		assert.is(r.status, 3, describe(r));
		assert.is(await sha256(dev), before);
	} finally {
		detachLoop(dev);
	}
});

t('minisign: a bundle signed with `minisign -Sm` (prehashed or legacy) verifies against a minisign public key; reimage-signed bundles pass `minisign -V`', () => {
	const keys = tmpDir('reimage-minisign-');
	minisign(['-G', '-W', '-p', path.join(keys, 'site.pub'), '-s', path.join(keys, 'site.key')]);
	const id = /minisign public key ([0-9A-F]{16})/.exec(fs.readFileSync(path.join(keys, 'site.pub'), 'utf8'))![1]!;
	const b = unsign(signedBundle(`${prefix}.key`));
	const m = path.join(b, 'manifest.json');
	minisign(['-S', '-s', path.join(keys, 'site.key'), '-m', m, '-t', 'kiosk fleet 2026-11']);
	const r = reimage(['verify', '--bundle', b, '--trust', path.join(keys, 'site.pub')]);
	assert.is(r.status, 0, describe(r));
	assert.match(r.stdout, new RegExp(`signed by trusted key ${id}`));
	minisign(['-S', '-l', '-s', path.join(keys, 'site.key'), '-m', m]);
	assert.is(reimage(['verify', '--bundle', b, '--trust', path.join(keys, 'site.pub')]).status, 0, 'legacy signature');
	// Trusting only reimage's key: the minisign signature is by a stranger.
	const stranger = reimage(['verify', '--bundle', b, '--trust', `${prefix}.pub`]);
	assert.is(stranger.status, 3, describe(stranger));
	assert.match(stranger.stderr, new RegExp(`signed by key ${id}, which is not trusted here`));
	// An altered trusted comment breaks the global signature.
	const sigFile = `${m}.minisig`;
	fs.writeFileSync(sigFile, fs.readFileSync(sigFile, 'utf8').replace(/^trusted comment: .*$/m, 'trusted comment: altered'));
	const altered = reimage(['verify', '--bundle', b, '--trust', path.join(keys, 'site.pub')]);
	assert.is(altered.status, 3, describe(altered));
	assert.match(altered.stderr, /manifest\.json\.minisig does not match manifest\.json/);
	// The other way round: minisign checks what reimage pack --sign wrote.
	const ours = signedBundle(`${prefix}.key`);
	assert.match(minisign(['-V', '-p', `${prefix}.minisign.pub`, '-m', path.join(ours, 'manifest.json')]), /Signature and comment signature verified/);
	assert.is(reimage(['verify', '--bundle', ours, '--trust', `${prefix}.minisign.pub`]).status, 0, 'our key in minisign format');
});

t.run();
