// Bringing a bundle from a source into a directory: trust first, only the
// files the manifest names, each checked against its sha256, the manifest last.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bringBundle, bundleFiles } from '../../../src/sources/bring.ts';
import { dirReader } from '../../../src/sources/dir.ts';
import { kindOf } from '../../../src/sources/index.ts';
import { createLog } from '../../../src/util/log.ts';

const log = createLog({ write: () => {} }, Date.now, true);
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
// A zstd frame's magic, so the bytes look like the codec the manifest says.
const IMAGE = Buffer.from('\x28\xb5\x2f\xfd rest of the image', 'latin1');

function medium(over: Record<string, unknown> = {}) {
	const dir = mkdtempSync(join(tmpdir(), 'reimage-medium-'));
	const m = {
		format: 'reimage-bundle/1',
		created: 'x',
		tool: 'reimage',
		raw: { size: 512, sha256: 'b'.repeat(64) },
		image: { file: 'kiosk.img.zst', codec: 'zstd', size: IMAGE.length, sha256: sha(IMAGE) },
		table: { label: 'gpt', id: 'x', sectorSize: 512, partitions: [] },
		mounts: [{ path: '/', spec: { kind: 'LABEL', value: 'root' }, partition: 1, fstype: 'ext4' }],
		retention: { file: 'keep.list', sha256: sha('/etc/x\n') },
		...over,
	};
	writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
	for (const f of ['manifest.json.sig', 'image.raw.zst', 'retention.list', 'other.bmap', 'notes.txt']) writeFileSync(join(dir, f), 'x');
	writeFileSync(join(dir, 'kiosk.img.zst'), IMAGE);
	writeFileSync(join(dir, 'keep.list'), '/etc/x\n');
	return dir;
}

test('only the manifest, its signatures and the files it names are brought, each checked', async () => {
	const from = medium();
	const to = mkdtempSync(join(tmpdir(), 'reimage-ram-'));
	let room = -1;
	const b = await bringBundle(dirReader(from, from, {}, true), to, { trusted: [], log, tty: false, room: async (n) => void (room = n) });
	assert.equal(readdirSync(to).sort(), ['keep.list', 'kiosk.img.zst', 'manifest.json', 'manifest.json.sig']);
	assert.is(b.files, 2);
	assert.ok(room >= IMAGE.length + 7, 'the room asked for covers every file');
	const again = await bringBundle(dirReader(from, from, {}, true), to, { trusted: [], log, tty: false });
	assert.is(again.reused, 2, 'a complete, matching copy on hand is kept');
});

test('a file whose bytes differ from the manifest is refused, named, and not left behind', async () => {
	const from = medium();
	writeFileSync(join(from, 'keep.list'), '/etc/y\n');
	const to = mkdtempSync(join(tmpdir(), 'reimage-ram-'));
	try {
		await bringBundle(dirReader(from, from, {}, true), to, { trusted: [], log, tty: false });
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /keep\.list is 7 bytes with sha256 [0-9a-f]{64} but the manifest says/);
		assert.is((e as { code: number }).code, 3);
	}
	assert.not.ok(existsSync(join(to, 'manifest.json')), 'no manifest: the directory is not a bundle');
	assert.not.ok(existsSync(join(to, 'keep.list.part')));
});

test('a manifest naming a file outside the directory, or the manifest itself, is refused', () => {
	const m = (file: string) => ({ image: { file, sha256: 'a'.repeat(64), size: 1 }, retention: undefined, bmap: undefined }) as never;
	for (const f of ['..', '.', 'manifest.json', 'manifest.json.sig', 'x.part'])
		assert.throws(() => bundleFiles(m(f)), /cannot be a bundle file/, f);
	assert.is(bundleFiles(m('image.raw.zst')).length, 1);
});

test('each spec goes to one kind: URLs, block-device specs, paths; other schemes are refused', () => {
	assert.is(kindOf('https://h/b/'), 'http');
	assert.is(kindOf('HTTP://h/b/manifest.json'), 'http');
	assert.is(kindOf('LABEL=REIMAGE:/bundle'), 'device');
	assert.is(kindOf('/dev/disk/by-id/usb-x-part1:/b'), 'device');
	assert.is(kindOf('/srv/bundle'), 'dir');
	assert.throws(() => kindOf('ftp://h/b/'), /not understood: give https:\/\//);
});

test.run();
