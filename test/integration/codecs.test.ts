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

t('pack without --mount reads the mounts from the image\'s /etc/fstab', () => {
	const b = pack('zstd', { mounts: [] });
	assert.equal(readManifest(b).mounts.map((x) => x.path).sort(), ['/', '/kiosk']);
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

t.run();
