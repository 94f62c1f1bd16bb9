// Seeded assembly with a fake chunk source: seeds supply what they hold, a
// changed seed is never used, a corrupt chunk is fetched again then refused,
// a missing one is named, an interrupted run resumes without fetching any
// chunk twice, and the dry run counts before fetching.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assemble } from '../../../src/chunks/assemble.ts';
import { makeIndex } from '../../../src/chunks/make.ts';
import { type ChunkSource, dirSource } from '../../../src/chunks/store.ts';
import { hashFile } from '../../../src/util/hash.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunks-unit-'));
const v1 = path.join(dir, 'v1');
const v2 = path.join(dir, 'v2');
const store = path.join(dir, 'store');
// Content-defined sizes: the stretches below move by amounts that are not multiples of 4 KiB.
const DEFAULT_SIZES = { min: 1024, avg: 4096, max: 16384 };
// v2: v1 with a changed stretch, a moved stretch and zeros.
const base = randomBytes(1 << 20);
fs.writeFileSync(v1, base);
fs.writeFileSync(v2, Buffer.concat([base.subarray(300000), randomBytes(50000), Buffer.alloc(100000), base.subarray(0, 300000)]));
const made = await makeIndex(v2, DEFAULT_SIZES, { dir: store, level: 3 });
const sha256 = (await hashFile(v2)).sha256;

// counting: the store, counting gets per id; FAIL(id, n) may replace the nth answer.
function counting(
	fail?: (id: string, n: number) => Buffer | undefined | 'throw',
): ChunkSource & { gets: Map<string, number>; served: Set<string> } {
	const real = dirSource(store, 3);
	const gets = new Map<string, number>();
	const served = new Set<string>();
	return {
		...real,
		gets,
		served,
		get: async (id) => {
			const n = (gets.get(id) ?? 0) + 1;
			gets.set(id, n);
			const f = fail?.(id, n);
			if (f === 'throw') throw new Error('link down');
			served.add(id);
			return f ?? real.get(id);
		},
	};
}
const out = () => path.join(fs.mkdtempSync(path.join(dir, 'o-')), 'img');

test('seeds supply what they hold, the store the rest, and the result is the image', async () => {
	const src = counting();
	const o = out();
	const r = await assemble({ index: made.index, out: o, seeds: [{ kind: 'file', path: v1 }], source: src, sha256 });
	assert.ok(fs.readFileSync(o).equals(fs.readFileSync(v2)));
	assert.ok((r.seeds[0]?.bytes ?? 0) > 800000, `seed gave ${r.seeds[0]?.bytes}`);
	assert.ok(r.fetched.bytes < 120000, `fetched ${r.fetched.bytes}`);
	assert.ok(
		[...src.gets.values()].every((n) => n === 1),
		'no chunk fetched twice',
	);
	const dry = await assemble({ index: made.index, out: out(), seeds: [{ kind: 'file', path: v1 }], source: src, dryRun: true });
	assert.is(dry.missing.chunks, r.fetched.chunks);
	assert.ok(dry.missing.wire !== undefined && dry.missing.wire === r.fetched.wire);
});

test('a seed whose bytes changed since it was indexed is never used: its chunks are fetched', async () => {
	const stale = path.join(dir, 'stale');
	fs.writeFileSync(stale, randomBytes(1 << 20));
	const o = out();
	const r = await assemble({
		index: made.index,
		out: o,
		seeds: [{ kind: 'index', path: stale, index: (await makeIndex(v1, DEFAULT_SIZES)).index }],
		source: counting(),
		sha256,
	});
	assert.ok((r.seeds[0]?.stale ?? 0) > 100);
	assert.ok(fs.readFileSync(o).equals(fs.readFileSync(v2)));
});

test('a corrupt chunk is fetched again; corrupt twice, or missing, is refused by name', async () => {
	const junk = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]);
	const once = counting((_id, n) => (n === 1 ? junk : undefined));
	const r = await assemble({ index: made.index, out: out(), seeds: [], source: once, sha256 });
	assert.is(r.fetched.retried, r.fetched.chunks);
	try {
		await assemble({ index: made.index, out: out(), seeds: [], source: counting(() => junk) });
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /do not hash to its id, twice/);
	}
	try {
		await assemble({ index: made.index, out: out(), seeds: [], source: { ...dirSource(path.join(dir, 'nowhere')) } });
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /lacks chunk [0-9a-f]{64}/);
	}
});

test('an interrupted assembly resumes: what it wrote is reused, no chunk is fetched twice', async () => {
	const o = out();
	let served = 0;
	const first = counting(() => (++served > 40 ? 'throw' : undefined));
	try {
		await assemble({ index: made.index, out: o, seeds: [], source: first, sha256 });
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /link down/);
	}
	const second = counting();
	const r = await assemble({ index: made.index, out: o, seeds: [], source: second, sha256 });
	assert.ok(r.inPlace.chunks >= 40, `in place ${r.inPlace.chunks}`);
	for (const [id, n] of second.gets) assert.ok(n === 1 && !first.served.has(id), `chunk ${id} fetched again`);
	assert.ok(fs.readFileSync(o).equals(fs.readFileSync(v2)));
});

test('a seed that fails while it is read proposes nothing; an image that is not the signed one is refused', async () => {
	const o = out();
	const r = await assemble({ index: made.index, out: o, seeds: [{ kind: 'file', path: dir }], source: counting(), sha256 });
	assert.match(r.seeds[0]?.error ?? '', /EISDIR/);
	assert.is(r.seeds[0]?.chunks, 0);
	assert.ok(fs.readFileSync(o).equals(fs.readFileSync(v2)));
	try {
		await assemble({ index: made.index, out: out(), seeds: [], source: counting(), sha256: '0'.repeat(64) });
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /has sha256 [0-9a-f]{64} but the manifest says 0{64}/);
	}
});

test('the dry run asks the stored sizes source.parallel at a time, and says nothing when one is unknown', async () => {
	let now = 0;
	let most = 0;
	let asked = 0;
	const real = dirSource(store, 3);
	const slow = (unknownAt?: number): ChunkSource => ({
		...real,
		parallel: 3,
		size: async (id) => {
			const me = ++asked;
			most = Math.max(most, ++now);
			await new Promise((r) => setTimeout(r, 2));
			now--;
			return me === unknownAt ? undefined : real.size?.(id);
		},
	});
	const r = await assemble({ index: made.index, out: out(), seeds: [], source: slow(), dryRun: true });
	assert.ok(r.missing.chunks > 10, `${r.missing.chunks} missing`);
	assert.is(most, 3, 'three at once, never more');
	assert.is(asked, r.missing.chunks, 'one question per missing chunk');
	assert.ok((r.missing.wire ?? 0) > 0 && (r.missing.wire ?? 0) < r.missing.bytes, `wire ${r.missing.wire}`);
	asked = 0;
	const u = await assemble({ index: made.index, out: out(), seeds: [], source: slow(2), dryRun: true });
	assert.is(u.missing.wire, undefined);
	assert.ok(asked <= 5, `stopped asking after the unknown one (${asked} asked)`);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
