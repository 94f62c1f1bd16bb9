import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { checkImageTable, imageTable, readAt, readHead } from '../../../src/image/head.ts';
import { Manifest } from '../../../src/bundle/manifest.ts';

// A 4 MiB raw image whose MBR holds one Linux partition, gzip-compressed (in-process codec: no processes).
function bundle(): { dir: string; file: string; raw: Buffer } {
	const raw = Buffer.alloc(4 << 20);
	raw.writeUInt32LE(0xcafe0001, 440);
	raw.writeUInt16LE(0xaa55, 510);
	raw[446 + 4] = 0x83;
	raw.writeUInt32LE(2048, 446 + 8);
	raw.writeUInt32LE(4096, 446 + 12);
	for (let i = 1 << 20; i < raw.length; i += 4096) raw[i] = i & 0xff;
	const dir = mkdtempSync(join(tmpdir(), 'reimage-head-'));
	const file = join(dir, 'image.raw.gz');
	writeFileSync(file, gzipSync(raw));
	return { dir, file, raw };
}

const manifest = (rawSize: number, size = 4096) =>
	Manifest.parse({
		format: 'reimage-bundle/1',
		created: '2026-01-01T00:00:00Z',
		tool: 'reimage 0.1.0',
		image: { file: 'image.raw.gz', codec: 'gzip', size: 1, sha256: 'a'.repeat(64) },
		raw: { size: rawSize, sha256: 'b'.repeat(64) },
		table: { label: 'dos', id: '0xcafe0001', sectorSize: 512, partitions: [{ number: 1, start: 2048, size, type: '83', fs: {} }] },
		mounts: [{ path: '/', spec: { kind: 'LABEL', value: 'root' }, partition: 1, fstype: 'ext4' }],
	});

test('readHead: exactly the first N raw bytes, never past the raw size', async () => {
	const b = bundle();
	const m = manifest(b.raw.length);
	assert.ok((await readHead(b.file, m, 1 << 20)).equals(b.raw.subarray(0, 1 << 20)));
	assert.ok((await readHead(b.file, m, 5000)).equals(b.raw.subarray(0, 5000)));
	assert.is((await readHead(b.file, manifest(3000), 1 << 20)).length, 3000);
	rmSync(b.dir, { recursive: true, force: true });
});

test('readAt: only the bytes asked for, anywhere in the image, cut at the raw size', async () => {
	const b = bundle();
	const m = manifest(b.raw.length);
	assert.ok((await readAt(b.file, m, (1 << 20) + 4095, 9000)).equals(b.raw.subarray((1 << 20) + 4095, (1 << 20) + 13095)));
	assert.ok((await readAt(b.file, m, b.raw.length - 100, 512)).equals(b.raw.subarray(b.raw.length - 100)));
	assert.is((await readAt(b.file, m, b.raw.length + 10, 512)).length, 0);
	rmSync(b.dir, { recursive: true, force: true });
});

test('imageTable: an EBR 3 MiB in (past the 1 MiB head) is fetched by offset; logical partition 5 found', async () => {
	const b = bundle();
	// Partition 2: extended at sector 6144 (3 MiB); its EBR holds logical 5 (2048 sectors at EBR + 1).
	b.raw[462 + 4] = 0x05;
	b.raw.writeUInt32LE(6144, 462 + 8);
	b.raw.writeUInt32LE(2048, 462 + 12);
	const ebr = 6144 * 512;
	b.raw.fill(0, ebr, ebr + 512);
	b.raw.writeUInt16LE(0xaa55, ebr + 510);
	b.raw[ebr + 446 + 4] = 0x83;
	b.raw.writeUInt32LE(1, ebr + 446 + 8);
	b.raw.writeUInt32LE(2047, ebr + 446 + 12);
	writeFileSync(b.file, gzipSync(b.raw));
	const t = await imageTable(b.file, manifest(b.raw.length));
	assert.equal(
		t.partitions.map((p) => [p.number, p.start, p.size, p.type]),
		[
			[1, 2048, 4096, '83'],
			[2, 6144, 2048, '5'],
			[5, 6145, 2047, '83'],
		],
	);
	rmSync(b.dir, { recursive: true, force: true });
});

// The RAM stage is unmounted right after a refusal: no descriptor of the staged file may outlive the check.
const openFds = (file: string) =>
	readdirSync('/proc/self/fd').filter((fd) => {
		try {
			return readlinkSync(`/proc/self/fd/${fd}`) === file;
		} catch {
			return false;
		}
	});

test('readHead leaves no descriptor of the staged file open when it returns (gzip and zstd)', async () => {
	const b = bundle();
	await readHead(b.file, manifest(b.raw.length), 1 << 20);
	assert.equal(openFds(b.file), []);
	const { zstdCompressSync } = await import('node:zlib');
	const z = join(b.dir, 'image.raw.zst');
	writeFileSync(z, zstdCompressSync(b.raw));
	const m = manifest(b.raw.length);
	m.image.codec = 'zstd';
	assert.ok((await readHead(z, m, 4096)).equals(b.raw.subarray(0, 4096)));
	assert.equal(openFds(z), []);
	rmSync(b.dir, { recursive: true, force: true });
});

test("checkImageTable: the image's own MBR against the manifest; a difference is exit 3 naming the field", async () => {
	const b = bundle();
	await checkImageTable(b.file, manifest(b.raw.length));
	try {
		await checkImageTable(b.file, manifest(b.raw.length, 8192));
		assert.unreachable('should refuse');
	} catch (e) {
		assert.is((e as { code: number }).code, 3);
		assert.match(
			(e as Error).message,
			/^the bundle's manifest does not describe its image: table\.partitions\[number=1\]\.size: the manifest says 8192, the image's own table says 4096; rebuild/,
		);
	}
	rmSync(b.dir, { recursive: true, force: true });
});

test('a stream that does not decompress is a bundle error, not a crash', async () => {
	const b = bundle();
	writeFileSync(b.file, Buffer.concat([gzipSync(b.raw).subarray(0, 100), Buffer.alloc(100, 7)]));
	try {
		await readHead(b.file, manifest(b.raw.length), 1 << 20);
		assert.unreachable('should refuse');
	} catch (e) {
		assert.is((e as { code: number }).code, 3);
	}
	rmSync(b.dir, { recursive: true, force: true });
});

test.run();
