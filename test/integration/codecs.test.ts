import * as crypto from 'node:crypto';
// Each codec packs a bundle that decodes to new.img exactly and verifies;
// one full run with bzip2 (zstd's full run is in run.test.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { CODECS, pack, readManifest, reimage, sharedBundle } from '../helpers/reimage.ts';
import type { Codec } from '../helpers/reimage.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	mount,
	partNode,
	partNumberByName,
	partxUpdate,
	sfdiskJson,
	sh,
	sha256,
	rmTmp,
	tmpDir,
	umount,
} from '../helpers/sys.ts';

const DECODE: Record<Codec, string> = {
	zstd: 'zstd -dc',
	gzip: 'gzip -dc',
	xz: 'xz -dc',
	bzip2: 'bzip2 -dc',
	none: 'cat',
};

/** sha256 of what the system's own decoder makes of `file`. */
function decodedSha256(codec: Codec, file: string): string {
	const out = sh('bash', ['-o', 'pipefail', '-c', `${DECODE[codec]} -- "$1" | sha256sum`, 'decode', file]);
	return out.split(/\s/)[0] ?? '';
}

let newSha: string | undefined;
async function newImgSha(): Promise<string> {
	newSha ??= await sha256(fixtures().newImg);
	return newSha;
}

const t = suite('codecs');

for (const codec of CODECS) {
	t(`pack --codec ${codec}: manifest describes the files exactly`, async () => {
		const b = sharedBundle(codec);
		const m = readManifest(b);
		assert.is(m.format, 'reimage-bundle/1');
		assert.is(m.image.codec, codec);
		assert.is(path.basename(m.image.file), m.image.file, 'image.file must be a bare name');
		const img = path.join(b, m.image.file);
		assert.ok(fs.existsSync(img), `${img} missing`);
		assert.is(m.image.size, fs.statSync(img).size, 'image.size');
		assert.is(m.image.sha256, await sha256(img), 'image.sha256');
		assert.is(m.raw.size, fs.statSync(fixtures().newImg).size, 'raw.size');
		assert.is(m.raw.sha256, await newImgSha(), 'raw.sha256');
		assert.is(decodedSha256(codec, img), m.raw.sha256, `${DECODE[codec]} does not give new.img back`);
		const paths = m.mounts.map((x) => x.path).sort();
		assert.equal(paths, ['/', '/kiosk']);
	});

	t(`verify ${codec} bundle -> 0`, () => {
		const r = reimage(['verify', '--bundle', sharedBundle(codec)]);
		assert.is(r.status, 0, describe(r));
	});
}

t('pack --retain copies the list into the bundle', () => {
	const b = pack('zstd', { retain: fixtures().list });
	const got = fs.readFileSync(path.join(b, 'retention.list'));
	assert.ok(got.equals(fs.readFileSync(fixtures().list)), 'retention.list differs from kiosk.list');
	const r = reimage(['verify', '--bundle', b]);
	assert.is(r.status, 0, describe(r));
});

t("pack without --mount reads the mounts from the image's /etc/fstab", () => {
	const b = pack('zstd', { mounts: [] });
	assert.equal(
		readManifest(b)
			.mounts.map((x) => x.path)
			.sort(),
		['/', '/kiosk'],
	);
});

t('full run with a bzip2 bundle', () => {
	const fx = fixtures();
	const b = sharedBundle('bzip2');
	const dev = attachLoop(freshOldDisk());
	const mounted: string[] = [];
	try {
		const r = reimage(['run', '--bundle', b, '--target', dev, '--retain', fx.list, '--yes']);
		assert.is(r.status, 0, describe(r));
		partxUpdate(dev);
		const table = sfdiskJson(dev);
		const root = mount(partNode(dev, partNumberByName(table, 'root')));
		mounted.push(root);
		const data = mount(partNode(dev, partNumberByName(table, 'data')));
		mounted.push(data);
		assert.match(fs.readFileSync(path.join(root, 'etc/os-release'), 'utf8'), /^NEW_IMAGE=1$/m);
		assert.is(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'kiosk-old-42\n');
		assert.match(fs.readFileSync(path.join(root, 'etc/machine-id'), 'utf8'), /a01d42/);
		assert.ok(fs.existsSync(path.join(data, 'config')), '/kiosk/config not restored');
		assert.ok(fs.existsSync(path.join(data, 'README-new')), 'data partition is not the new one');
		const report = JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')) as {
			outcome?: string;
		};
		assert.is(report.outcome, 'success');
	} finally {
		for (const m of mounted.reverse()) umount(m);
		detachLoop(dev);
	}
});

// A compressor's output larger than execa's 100 MB buffer must stream to the
// file, not be buffered (it was, and pack died on real images).
t('pack streams a compressed image larger than 100 MB to the bundle', () => {
	const dir = tmpDir('reimage-bigpack-');
	const img = path.join(dir, 'big.img');
	const root = path.join(dir, 'root');
	fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
	fs.writeFileSync(path.join(root, 'etc/fstab'), 'LABEL=root / ext4 defaults 0 1\n');
	fs.writeFileSync(img, '');
	fs.truncateSync(img, 180 * 2 ** 20);
	sh('sfdisk', ['-q', img], { input: 'label: gpt\nsize=8M,type=L,name=root\ntype=L,name=noise\n' });
	sh('mkfs.ext4', ['-q', '-L', 'root', '-d', root, '-E', 'offset=1048576', img, '8M']);
	// Incompressible bytes fill the second partition.
	const fd = fs.openSync(img, 'r+');
	const chunk = Buffer.alloc(2 ** 20);
	for (let i = 0; i < 165; i++) fs.writeSync(fd, crypto.randomFillSync(chunk), 0, chunk.length, (10 + i) * 2 ** 20);
	fs.closeSync(fd);
	const out = path.join(dir, 'bundle');
	const r = reimage(['pack', img, '--out', out, '--codec', 'gzip']);
	assert.is(r.status, 0, describe(r));
	const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
	assert.ok(m.image.size > 100 * 2 ** 20, `compressed size ${m.image.size}`);
	assert.is(reimage(['verify', '--bundle', out]).status, 0);
	rmTmp(dir);
});

t.run();
