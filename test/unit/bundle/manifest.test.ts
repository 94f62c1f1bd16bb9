import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Manifest, formatIssues } from '../../../src/bundle/manifest.ts';
import { good } from '../_manifest.ts';

const issues = (m: unknown) => {
	const r = Manifest.safeParse(m);
	return r.success ? '' : formatIssues(r.error);
};

test('a good manifest parses', () => {
	assert.is(issues(good()), '');
});

test('wrong types, unknown keys, bad hashes and unsafe file names are named by path', () => {
	assert.match(issues({ ...good(), raw: { size: '10', sha256: 'b'.repeat(64) } }), /raw\.size/);
	assert.match(issues({ ...good(), extra: 1 }), /extra/);
	assert.match(issues({ ...good(), image: { ...good().image, sha256: 'XYZ' } }), /image\.sha256: expected 64 lowercase hex digits/);
	assert.match(issues({ ...good(), image: { ...good().image, file: '../etc/passwd' } }), /image\.file/);
	assert.match(issues({ ...good(), image: { ...good().image, codec: 'lz4' } }), /image\.codec/);
	assert.match(issues({ ...good(), raw: { size: 2 ** 60, sha256: 'b'.repeat(64) } }), /raw\.size/);
	assert.match(issues({ ...good(), mounts: [] }), /mounts/);
	assert.match(issues({ ...good(), format: 'reimage-bundle/9' }), /format/);
});

test('mount paths must be normalised and unique', () => {
	const withPath = (...paths: string[]) => ({ ...good(), mounts: paths.map((path) => ({ ...good().mounts[0]!, path })) });
	assert.is(issues(withPath('/', '/boot/efi')), '');
	for (const bad of ['/../x', '/a/./b', '//x', '/kiosk/', '/a\0b', 'kiosk', '/a/..']) {
		assert.match(issues(withPath('/', bad)), /mounts\.1\.path: mount path .* expected a normalised absolute path/, bad);
	}
	assert.match(issues(withPath('/', '/kiosk', '/kiosk')), /mount path \/kiosk is given twice/);
});

test('mount options: only btrfs subvol=/subvolid=, comma-separated', () => {
	const withOptions = (options: string) => ({ ...good(), mounts: [{ ...good().mounts[0]!, options }] });
	for (const ok of ['subvol=@', 'subvolid=256', 'subvol=@home,subvolid=257', 'subvol=/root']) assert.is(issues(withOptions(ok)), '', ok);
	for (const bad of ['', 'rw', 'subvol=@,exec', 'loop,offset=0', 'subvol=', 'subvol=a b', 'subvol=@,']) {
		assert.match(issues(withOptions(bad)), /mounts\.0\.options: expected only subvol=NAME and subvolid=N/, bad);
	}
});

test('the retention list is named with its sha256; a bare file name (older packs) is refused with the fix', () => {
	assert.is(issues({ ...good(), retention: { file: 'retention.list', sha256: 'c'.repeat(64) } }), '');
	assert.match(issues({ ...good(), retention: 'retention.list' }), /retention: expected \{ file, sha256 \}.*pack it again/);
	assert.match(issues({ ...good(), retention: { file: 'retention.list' } }), /retention\.sha256/);
	assert.match(issues({ ...good(), retention: { file: '../x', sha256: 'c'.repeat(64) } }), /retention\.file: expected a plain file name/);
});

test.run();
