// The compressed chunk index: a fetch downloads the zstd copy the manifest
// names, checks it against its own signed sha256 and size, decompresses it
// never past the plain index's signed size, checks the result against the
// plain index's sha256 and writes it beside it (casync reads that one).
// Manifests without the copy still fetch the plain index.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { INDEX_ZST_FILE, indexTransfer, readBroughtIndex } from '../../../src/bundle/chunked.ts';
import { Chunks } from '../../../src/bundle/manifest.ts';
import { BLOB_FLAGS, formatIndex } from '../../../src/chunks/caibx.ts';
import { ReimageError } from '../../../src/errors.ts';

const sizes = { min: 1024, avg: 4096, max: 16384 };
const plain = formatIndex({
	flags: BLOB_FLAGS,
	sizes,
	ends: Float64Array.from({ length: 500 }, (_, i) => 4096 * (i + 1)),
	ids: randomBytes(32 * 500),
});
const sum = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const zst = zstdCompressSync(plain);
const chunks = (z: Buffer | undefined): Chunks =>
	Chunks.parse({
		index: {
			file: 'image.caibx',
			size: plain.length,
			sha256: sum(plain),
			...(z ? { zst: { file: INDEX_ZST_FILE, size: z.length, sha256: sum(z) } } : {}),
		},
		store: 'chunks',
		sizes,
		digest: 'sha512-256',
		compression: 'zstd',
	});
const dirWith = (name: string, bytes: Buffer) => {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-idx-'));
	fs.writeFileSync(path.join(d, name), bytes);
	return d;
};
async function refused(p: Promise<unknown>, re: RegExp): Promise<void> {
	try {
		await p;
	} catch (e) {
		assert.instance(e, ReimageError);
		assert.match((e as Error).message, re);
		return;
	}
	assert.unreachable('accepted');
}

test('a manifest that names the zstd copy: it is what a fetch downloads, and it gives the plain index byte for byte', async () => {
	const c = chunks(zst);
	assert.equal(indexTransfer(c), { name: INDEX_ZST_FILE, expect: { sha256: sum(zst), size: zst.length } });
	assert.ok(zst.length < plain.length);
	const d = dirWith(INDEX_ZST_FILE, zst);
	const index = await readBroughtIndex(d, c, 'https://example/b/');
	assert.is(index.ends.length, 500);
	assert.ok(fs.readFileSync(path.join(d, 'image.caibx')).equals(plain), 'the plain index is written beside it, for casync');
});

test('a manifest without the copy (packed before it existed) fetches the plain index', async () => {
	const c = chunks(undefined);
	assert.equal(indexTransfer(c), { name: 'image.caibx', expect: { sha256: sum(plain), size: plain.length } });
	assert.is((await readBroughtIndex(dirWith('image.caibx', plain), c, 'b')).ends.length, 500);
});

test('a copy that decompresses to another index, to more than the signed size, or not at all is refused by name', async () => {
	const other = Buffer.from(plain);
	other[100] = (other[100] ?? 0) ^ 1;
	const wrong = zstdCompressSync(other);
	// Signed as the copy (its own sha256 right), but not the signed plain index.
	await refused(
		readBroughtIndex(dirWith(INDEX_ZST_FILE, wrong), chunks(wrong), 'https://example/b/'),
		/image\.caibx\.zst from https:\/\/example\/b\/ decompresses to \d+ bytes with sha256 [0-9a-f]{64} but the manifest says image\.caibx is/,
	);
	const bomb = zstdCompressSync(Buffer.alloc(64 << 20));
	await refused(readBroughtIndex(dirWith(INDEX_ZST_FILE, bomb), chunks(bomb), 'b'), /does not decompress to at most \d+ bytes/);
	const junk = randomBytes(200);
	await refused(readBroughtIndex(dirWith(INDEX_ZST_FILE, junk), chunks(junk), 'b'), /does not decompress/);
});

test('the manifest schema refuses a copy named outside the bundle', () => {
	const bad = { ...chunks(zst), index: { ...chunks(zst).index, zst: { file: '../x', size: 1, sha256: sum(zst) } } };
	assert.not.ok(Chunks.safeParse(bad).success);
});

test.run();
