// Signed bundles with the built binary: keygen, pack --sign, verify/run --trust.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { MOUNTS, reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, exec, sha256, tmpDir } from '../helpers/sys.ts';
import { createHash } from 'node:crypto';

const sha256Of = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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

t(
	'minisign: a bundle signed with `minisign -Sm` (prehashed or legacy) verifies against a minisign public key; reimage-signed bundles pass `minisign -V`',
	() => {
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
		assert.match(
			minisign(['-V', '-p', `${prefix}.minisign.pub`, '-m', path.join(ours, 'manifest.json')]),
			/Signature and comment signature verified/,
		);
		assert.is(reimage(['verify', '--bundle', ours, '--trust', `${prefix}.minisign.pub`]).status, 0, 'our key in minisign format');
	},
);

t('a retention list edited on a signed bundle is refused (exit 3) naming the file and both hashes; nothing written', async () => {
	const out = path.join(tmpDir('reimage-signed-'), 'bundle');
	const p = reimage([
		'pack',
		fixtures().newImg,
		'--out',
		out,
		'--sign',
		`${prefix}.key`,
		'--retain',
		fixtures().list,
		...MOUNTS.flatMap((m) => ['--mount', m]),
	]);
	assert.is(p.status, 0, describe(p));
	const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
	assert.equal(
		m.retention,
		{ file: 'retention.list', sha256: sha256Of(fs.readFileSync(fixtures().list)) },
		'the manifest names the list with its sha256',
	);
	assert.is(reimage(['verify', '--bundle', out, '--trust', `${prefix}.pub`]).status, 0);
	// Keep less of the old system: a list an attacker trimmed, with the signature untouched.
	const list = path.join(out, 'retention.list');
	fs.writeFileSync(list, fs.readFileSync(list, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
	const edited = sha256Of(fs.readFileSync(list));
	const v = reimage(['verify', '--bundle', out, '--trust', `${prefix}.pub`]);
	assert.is(v.status, 3, describe(v));
	assert.match(
		v.stderr,
		new RegExp(
			`bundle retention list ${list} has sha256 ${edited} but the manifest says ${m.retention.sha256}: the list was altered after packing; get the bundle again`,
		),
	);
	assert.is(
		v.stderr
			.trim()
			.split('\n')
			.filter((l) => l.startsWith('reimage:')).length,
		1,
		'one sentence',
	);
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		for (const trust of [['--trust', `${prefix}.pub`], []]) {
			const r = reimage(['run', '--bundle', out, '--target', dev, ...trust, '--yes']);
			assert.is(r.status, 3, describe(r));
			assert.match(r.stderr, /bundle retention list .* has sha256 .* but the manifest says/);
		}
		assert.is(await sha256(dev), before);
	} finally {
		detachLoop(dev);
	}
});

t(
	'--trust that yields no key (missing, a private key, an empty dir, a dir of non-key files) is a usage error (exit 2) for verify, plan and run',
	async () => {
		const b = signedBundle(`${prefix}.key`);
		const empty = tmpDir('reimage-trust-empty-');
		const junk = tmpDir('reimage-trust-junk-');
		fs.writeFileSync(path.join(junk, 'README'), 'put keys here\n');
		fs.copyFileSync(`${prefix}.key`, path.join(junk, 'fleet.key'));
		const cases: [string, RegExp][] = [
			[
				path.join(dir, 'missing.pub'),
				/trusted key .*missing\.pub does not exist: give a \.pub file made by reimage keygen or minisign -G, or a directory of them/,
			],
			[`${prefix}.key`, /trusted key .*fleet\.key is a private key, not a public one: give its \.pub/],
			[empty, /trusted key directory .* holds no \*\.pub key file, so it trusts no key/],
			[junk, /holds no \*\.pub key file/],
		];
		const dev = attachLoop(freshOldDisk());
		try {
			const before = await sha256(dev);
			for (const [trust, re] of cases) {
				for (const args of [
					['verify', '--bundle', b],
					['plan', '--bundle', b, '--target', dev],
					['run', '--bundle', b, '--target', dev, '--yes'],
				]) {
					const r = reimage([...args, '--trust', trust]);
					assert.is(r.status, 2, `${args[0]} --trust ${trust}: ${describe(r)}`);
					assert.match(r.stderr, re);
					assert.not.match(r.stderr, /unsigned|\n\s+at /, 'never accepted, never a stack trace');
				}
			}
			assert.is(await sha256(dev), before);
		} finally {
			detachLoop(dev);
		}
	},
);

t(
	'reimage initrd will not build an initrd that trusts nothing, one whose config contradicts itself, or one with a private key baked in (exit 2, before dracut runs)',
	() => {
		const kver = fs.readdirSync('/lib/modules').sort().pop()!;
		const out = path.join(tmpDir('reimage-initrd-'), 'never.img');
		const none = tmpDir('reimage-initrd-cfg-');
		fs.writeFileSync(path.join(none, 'config.json'), '{ "mode": "auto" }\n');
		const both = tmpDir('reimage-initrd-cfg-');
		fs.writeFileSync(path.join(both, 'config.json'), '{ "allowUnsigned": true }\n');
		fs.copyFileSync(`${prefix}.pub`, path.join(both, 'fleet.pub'));
		const withPrivate = tmpDir('reimage-initrd-cfg-');
		fs.copyFileSync(`${prefix}.pub`, path.join(withPrivate, 'fleet.pub'));
		fs.copyFileSync(`${prefix}.key`, path.join(withPrivate, 'fleet.key'));
		const cases: [string[], RegExp][] = [
			[[], /an initrd without --config trusts no signing key and would refuse every bundle/],
			[['--config', none], /has no \*\.pub key and does not set allowUnsigned, so the initrd would refuse every bundle/],
			[['--config', both], /holds trusted keys \([0-9a-f]{16}\) and sets allowUnsigned/],
			[['--config', withPrivate], /--config .* holds a private key \(fleet\.key\), which would be baked into the initrd: move it out/],
		];
		for (const [args, re] of cases) {
			const r = reimage(['initrd', '--out', out, '--kver', kver, ...args]);
			assert.is(r.status, 2, describe(r));
			assert.match(r.stderr, re);
			assert.not.ok(fs.existsSync(out));
		}
	},
);

t.run();
