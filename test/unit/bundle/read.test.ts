// loadBundle of a chunked bundle fetched with --seed: the assembled raw image
// stands in for the compressed one, read as codec none against the signed raw
// size and sha256; the manifest's bytes are never changed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBundle } from '../../../src/bundle/read.ts';

const RAW = { size: 4096, sha256: 'a'.repeat(64) };
const manifest = (chunks: boolean) => ({
	format: 'reimage-bundle/1',
	created: '2026-01-01T00:00:00.000Z',
	tool: 'test',
	image: { file: 'image.raw.zst', codec: 'zstd', size: 100, sha256: 'b'.repeat(64) },
	raw: RAW,
	table: { label: 'gpt', id: '00000000-0000-0000-0000-000000000001', sectorSize: 512, partitions: [] },
	mounts: [{ path: '/', spec: { kind: 'LABEL', value: 'root' }, partition: 1, fstype: 'ext4' }],
	...(chunks
		? {
				chunks: {
					index: { file: 'image.caibx', size: 10, sha256: 'c'.repeat(64) },
					store: 'chunks',
					sizes: { min: 1024, avg: 4096, max: 16384 },
					digest: 'sha512-256',
					compression: 'zstd',
				},
			}
		: {}),
});

test('an assembled image is read as codec none against the raw hash; without chunks it is not', async () => {
	const dir = mkdtempSync(join(tmpdir(), 'reimage-read-'));
	try {
		writeFileSync(join(dir, 'assembled.img'), Buffer.alloc(RAW.size));
		writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest(true)));
		const b = await loadBundle(dir);
		assert.is(b.imagePath, join(dir, 'assembled.img'));
		assert.equal(b.manifest.image, { file: 'assembled.img', codec: 'none', size: RAW.size, sha256: RAW.sha256 });
		writeFileSync(join(dir, 'assembled.img'), Buffer.alloc(RAW.size - 1));
		await loadBundle(dir).then(
			() => assert.unreachable('a short image'),
			(e: Error) => assert.match(e.message, /assembled\.img is 4095 bytes but the manifest says 4096/),
		);
		writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest(false)));
		await loadBundle(dir).then(
			() => assert.unreachable('no chunks'),
			(e: Error) => assert.match(e.message, /image\.raw\.zst is missing/),
		);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
});

test.run();
