// Seeded assembly into a seekable zstd file (the RAM stage of a run) with a
// fake chunk source: the file decodes, frame by frame, to the image; seeds
// supply what they hold and a changed seed chunk is fetched instead; a run
// that failed part-way leaves its chunks in the cache and the next fetches
// none twice; a corrupt cached chunk is fetched again, not used; a wrong
// signed sha256 is refused.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FRAME, readSeekTable } from '../../../src/codecs/seekable.ts';
import { assembleCompressed } from '../../../src/chunks/compact.ts';
import { makeIndex } from '../../../src/chunks/make.ts';
import { type ChunkSource, dirSource } from '../../../src/chunks/store.ts';
import { hashFile } from '../../../src/util/hash.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compact-unit-'));
const v1 = path.join(dir, 'v1');
const v2 = path.join(dir, 'v2');
const store = path.join(dir, 'store');
const SIZES = { min: 1024, avg: 4096, max: 16384 };
// v2: larger than one frame; v1's bytes moved, a changed stretch, zeros.
const base = randomBytes(5 << 19);
fs.writeFileSync(v1, base);
fs.writeFileSync(v2, Buffer.concat([base.subarray(300000), randomBytes(50000), Buffer.alloc(6 << 20), base.subarray(0, 300000)]));
const made = await makeIndex(v2, SIZES, { dir: store, level: 3 });
const v1Index = (await makeIndex(v1, SIZES, { dir: path.join(dir, 'store1'), level: 3 })).index;
const sha256 = (await hashFile(v2)).sha256;

function counting(fail?: (id: string, n: number) => 'throw' | undefined): ChunkSource & { gets: Map<string, number> } {
	const real = dirSource(store, 3);
	const gets = new Map<string, number>();
	return {
		...real,
		gets,
		get: async (id) => {
			const n = (gets.get(id) ?? 0) + 1;
			gets.set(id, n);
			if (fail?.(id, n) === 'throw') throw new Error('link down');
			return real.get(id);
		},
	};
}
const fresh = () => fs.mkdtempSync(path.join(dir, 'o-'));
// decode: the seekable file's frames decompressed one by one.
async function decode(file: string): Promise<Buffer> {
	const frames = await readSeekTable(file);
	assert.ok(frames, 'a seek table');
	const all = fs.readFileSync(file);
	return Buffer.concat(frames.map((f) => zstdDecompressSync(all.subarray(f.cOff, f.cOff + f.cLen))));
}

test('the seekable file decodes to the image; the seed gives most, the store only what it lacks', async () => {
	const d = fresh();
	const src = counting();
	const out = path.join(d, 'img.zst');
	const r = await assembleCompressed({
		index: made.index,
		out,
		seeds: [{ kind: 'file', path: v1 }],
		source: src,
		cache: path.join(d, 'cache'),
		sha256,
	});
	assert.ok((await decode(out)).equals(fs.readFileSync(v2)));
	assert.ok(
		((await readSeekTable(out)) ?? []).slice(0, -1).every((f) => f.rawLen === FRAME),
		'8 MiB frames as pack writes',
	);
	assert.is(r.image.size, fs.statSync(out).size);
	assert.is(r.sha256, sha256);
	assert.ok((r.seeds[0]?.bytes ?? 0) > 2 << 20);
	assert.is(r.fetched.chunks, r.missing.chunks);
	assert.ok([...src.gets.values()].every((n) => n === 1));
	assert.ok(r.fetched.bytes < 120000, `fetched ${r.fetched.bytes}`);
	assert.ok(r.image.size < r.size / 3, `${r.image.size} bytes: the zeros compressed`);
});

test('a seed chunk that changed since it was indexed is fetched, never used', async () => {
	const d = fresh();
	const changed = path.join(d, 'v1-changed');
	const b = Buffer.from(base);
	for (const at of [1 << 19, 1 << 20, 2 << 20]) b.fill(7, at, at + 16);
	fs.writeFileSync(changed, b);
	const out = path.join(d, 'img.zst');
	const r = await assembleCompressed({
		index: made.index,
		out,
		seeds: [{ kind: 'index', path: changed, index: v1Index }],
		source: counting(),
		cache: path.join(d, 'cache'),
		sha256,
	});
	assert.ok((r.seeds[0]?.stale ?? 0) >= 3, `stale ${r.seeds[0]?.stale}`);
	assert.is(r.fetched.chunks, r.missing.chunks + (r.seeds[0]?.stale ?? 0));
	assert.ok((await decode(out)).equals(fs.readFileSync(v2)));
});

test('a run that failed part-way leaves its chunks; the next fetches none twice; a corrupt cached chunk is fetched again', async () => {
	const d = fresh();
	const cache = path.join(d, 'cache');
	const out = path.join(d, 'img.zst');
	// No seed: every chunk but zeros comes from the store; the link fails after 10 chunks.
	let served = 0;
	const first = counting(() => (++served > 10 ? 'throw' : undefined));
	await assembleCompressed({ index: made.index, out, seeds: [], source: { ...first, parallel: 1 }, cache, sha256 }).then(
		() => assert.unreachable('the link failed'),
		(e: Error) => assert.match(e.message, /link down/),
	);
	const kept = fs.readdirSync(cache).filter((f) => f.endsWith('.cacnk'));
	assert.is(kept.length, 10);
	// One kept chunk corrupted: not used, fetched again.
	const bad = path.join(cache, kept[0] as string);
	fs.writeFileSync(bad, Buffer.from('not a zstd frame'));
	const second = counting();
	const r = await assembleCompressed({ index: made.index, out, seeds: [], source: second, cache, sha256 });
	assert.is(r.cached.chunks, 9);
	const twice = kept.map((f) => f.replace('.cacnk', '')).filter((id) => second.gets.has(id));
	assert.equal(twice, [(kept[0] as string).replace('.cacnk', '')], 'only the corrupted one is fetched again');
	assert.ok((await decode(out)).equals(fs.readFileSync(v2)));
});

test('an index that does not describe the signed image is refused by its sha256', async () => {
	const d = fresh();
	const wrong = '0'.repeat(64);
	await assembleCompressed({
		index: made.index,
		out: path.join(d, 'img.zst'),
		seeds: [{ kind: 'file', path: v1 }],
		source: counting(),
		cache: path.join(d, 'cache'),
		sha256: wrong,
	}).then(
		() => assert.unreachable('refused'),
		(e: Error) => assert.match(e.message, /the image assembled from chunks has sha256 [0-9a-f]{64} but the manifest says 0{64}/),
	);
});

test('the chunks to download are announced (a bound on what the cache grows by) before any is fetched; a refusal there fetches none', async () => {
	// v2 assembled in a fresh directory, v1 the seed, BEFORE the hook.
	const withHook = (src: ChunkSource, beforeFetch: (bytes: number, chunks: number) => Promise<void>) => {
		const d = fresh();
		const cache = path.join(d, 'cache');
		const run = assembleCompressed({
			index: made.index,
			out: path.join(d, 'img.zst'),
			seeds: [{ kind: 'file', path: v1 }],
			source: src,
			cache,
			sha256,
			beforeFetch,
		});
		return { run, cache };
	};
	const src = counting();
	const asked: { bytes: number; chunks: number; gets: number }[] = [];
	const ok = withHook(src, async (bytes, chunks) => void asked.push({ bytes, chunks, gets: src.gets.size }));
	const r = await ok.run;
	assert.is(asked.length, 1);
	assert.equal(asked[0], { bytes: asked[0]?.bytes ?? 0, chunks: r.fetched.chunks, gets: 0 });
	const cached = fs.readdirSync(ok.cache).reduce((n, f) => n + fs.statSync(path.join(ok.cache, f)).size, 0);
	assert.ok((asked[0]?.bytes ?? 0) >= cached, `bound ${asked[0]?.bytes} < ${cached} bytes in the cache`);

	const src2 = counting();
	const refused = await withHook(src2, async () => {
		throw new Error('no RAM for the cache');
	}).run.catch((e: Error) => e.message);
	assert.is(refused, 'no RAM for the cache');
	assert.is(src2.gets.size, 0, 'nothing was downloaded');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
