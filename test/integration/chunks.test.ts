// Chunked bundles against the real casync: `casync extract` rebuilds the image
// from what pack --chunks wrote, reimage takes what `casync make` wrote (and
// our chunker cuts a file system image exactly as casync does), and assemble
// builds a v2 image from a v1 seed (a file or a block device) fetching only
// what the seed lacks — then each way a chunked bundle can be bad.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIndex } from '../../src/chunks/caibx.ts';
import { chunker } from '../../src/chunks/chunker.ts';
import { scanIds } from '../../src/chunks/parallel.ts';
import { REPO } from '../helpers/fixtures.ts';
import { reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, rmTmp, sh, tmpDir } from '../helpers/sys.ts';

const t = suite('chunks');
const dir = tmpDir('reimage-chunks-');
const v1 = path.join(dir, 'v1.img');
const v2 = path.join(dir, 'v2.img');
const ROOT = ['--mount', 'PARTLABEL=root:/'];
const same = (a: string, b: string) => fs.readFileSync(a).equals(fs.readFileSync(b));

function ok(args: string[]): string {
	const r = reimage(args);
	assert.is(r.status, 0, describe(r));
	return r.stdout;
}
function refused(args: string[], code: number, re: RegExp): void {
	const r = reimage(args);
	assert.is(r.status, code, describe(r));
	assert.match(r.stderr, re);
	assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
}
let bundle = '';
function packed(): string {
	if (!bundle) {
		bundle = path.join(dir, 'b2');
		ok(['pack', v2, '--out', bundle, '--chunks', ...ROOT]);
	}
	return bundle;
}
function copy(b: string): string {
	const d = path.join(tmpDir('reimage-chunks-b-'), 'b');
	sh('cp', ['-a', b, d]);
	return d;
}
// needed: a chunk file of the bundle's store that assembling from no seed must
// fetch (the largest: not the all-zeros chunk, which is never fetched).
function needed(b: string): string {
	const files = sh('find', [path.join(b, 'chunks'), '-name', '*.cacnk'])
		.trim()
		.split('\n');
	return files.reduce((a, f) => (fs.statSync(f).size > fs.statSync(a).size ? f : a));
}

t.before(() => {
	sh('bash', [path.join(REPO, 'test', 'bench', 'make-pair.sh'), '/usr/lib/x86_64-linux-gnu/gconv', '16', dir]);
});
t.after(() => rmTmp(dir));

t('casync extract rebuilds the image from the index and store pack --chunks wrote; the signed manifest names the index', async () => {
	const b = packed();
	const m = JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8'));
	assert.equal(m.chunks.sizes, { min: 1024, avg: 4096, max: 16384 });
	assert.is(m.chunks.index.size, fs.statSync(path.join(b, 'image.caibx')).size);
	assert.is(m.chunks.store, 'chunks');
	const out = path.join(dir, 'extracted.img');
	sh('casync', ['extract', `--store=${path.join(b, 'chunks')}`, path.join(b, 'image.caibx'), out]);
	assert.ok(same(out, v2), 'casync extract gives the image byte for byte');
	// casync make cuts the same file system image into the same chunks with the same ids (fixed 4 KiB, and content-defined small chunks).
	const theirs = path.join(dir, 'theirs.caibx');
	sh('casync', ['make', `--store=${path.join(dir, 'spare.castr')}`, '--chunk-size=1024:4096:16384', theirs, v2]);
	assert.ok(fs.readFileSync(theirs).equals(fs.readFileSync(path.join(b, 'image.caibx'))), 'identical index');
	// The parallel seed scan, in regions small enough that a 16 MiB image has many borders, cuts as casync does.
	const sc = await scanIds(v2, chunker({ min: 1024, avg: 4096, max: 16384 }), undefined, { workers: 2, region: 1 << 20 });
	assert.ok(sc.regions > 8, `${sc.regions} regions`);
	const their = parseIndex(fs.readFileSync(theirs));
	assert.ok(
		typeof their !== 'string' && their.ids.equals(sc.ids) && their.ends.every((e, i) => e === sc.ends[i]),
		"the parallel scan gives casync make's chunks",
	);
	// The zstd copy of the index (what a fetch downloads) is named and signed too; zstd -d gives casync's index.
	const z = path.join(b, 'image.caibx.zst');
	assert.equal(m.chunks.index.zst, { file: 'image.caibx.zst', size: fs.statSync(z).size, sha256: sh('sha256sum', [z]).slice(0, 64) });
	sh('zstd', ['-dqf', z, '-o', path.join(dir, 'unz.caibx')]);
	assert.ok(same(path.join(dir, 'unz.caibx'), theirs), 'zstd -d gives the plain index');
	const fixed = path.join(dir, 'fixed');
	ok(['pack', v2, '--out', fixed, '--chunks', '--chunk-size', '4K:4K:4K', ...ROOT]);
	sh('casync', ['make', `--store=${path.join(dir, 'spare.castr')}`, '--chunk-size=4096:4096:4096', theirs, v2]);
	assert.ok(fs.readFileSync(theirs).equals(fs.readFileSync(path.join(fixed, 'image.caibx'))), 'identical index at fixed 4 KiB');
});

t('reimage takes the index and store casync make wrote (default sizes), and assembles the image from them', () => {
	const store = path.join(dir, 'castore');
	const idx = path.join(dir, 'v2.caibx');
	sh('casync', ['make', `--store=${store}`, idx, v2]);
	const b = path.join(dir, 'bc');
	ok(['pack', v2, '--out', b, '--chunks', '--chunk-index', idx, '--chunk-store', store, ...ROOT]);
	const m = JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8'));
	assert.equal(m.chunks.sizes, { min: 16384, avg: 65536, max: 262144 });
	assert.is(m.chunks.store, undefined, 'a store outside the bundle is not named');
	const out = path.join(dir, 'from-casync.img');
	ok(['assemble', '--bundle', b, '--store', store, '--seed', v1, '--out', out]);
	assert.ok(same(out, v2));
	// Our chunker with casync's default sizes writes the very same index.
	const ours = path.join(dir, 'bo');
	ok(['pack', v2, '--out', ours, '--chunks', '--chunk-size', '16K:64K:256K', ...ROOT]);
	assert.ok(fs.readFileSync(path.join(ours, 'image.caibx')).equals(fs.readFileSync(idx)));
});

t('assemble from a v1 block device: the dry run says what is missing, the run fetches only that, a rerun fetches nothing', () => {
	const b = packed();
	const dev = attachLoop(v1, { readOnly: true });
	try {
		const out = path.join(dir, 'assembled.img');
		const dry = JSON.parse(ok(['assemble', '--bundle', b, '--seed', dev, '--out', out, '--dry-run', '--json']));
		assert.ok(!fs.existsSync(out), 'a dry run writes nothing');
		const seeded = dry.seeds[0].bytes;
		assert.ok(seeded > dry.missing.bytes, `the seed holds most of it (${seeded} vs ${dry.missing.bytes} missing)`);
		const run = JSON.parse(ok(['assemble', '--bundle', b, '--seed', dev, '--out', out, '--json']));
		assert.is(run.fetched.chunks, dry.missing.chunks);
		assert.is(run.fetched.wire, dry.missing.wire);
		assert.ok(run.fetched.wire < fs.statSync(path.join(b, 'image.raw.zst')).size, 'fewer bytes than the compressed image');
		assert.is(run.sha256, JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8')).raw.sha256);
		assert.ok(same(out, v2));
		const again = JSON.parse(ok(['assemble', '--bundle', b, '--out', out, '--json']));
		assert.is(again.fetched.chunks, 0);
		assert.is(again.inPlace.chunks, again.chunks);
	} finally {
		detachLoop(dev);
	}
});

t(
	'assemble --out naming an existing file it did not start (a config file, an old image given as seed too) -> 2, the file untouched',
	() => {
		const b = packed();
		const precious = path.join(dir, 'precious.conf');
		fs.writeFileSync(precious, 'keep me\n');
		const r = reimage(['assemble', '--bundle', b, '--out', precious, '--json']);
		assert.is(r.status, 2, describe(r));
		assert.match(r.stderr, /--out .*precious\.conf already holds 8 bytes that reimage assemble did not start for this image/);
		assert.is(JSON.parse(r.stdout).exitCode, 2);
		assert.is(fs.readFileSync(precious, 'utf8'), 'keep me\n');
		const old = path.join(dir, 'old-as-out.img');
		sh('cp', ['--sparse=always', v1, old]);
		const before = fs.readFileSync(old);
		refused(['assemble', '--bundle', b, '--seed', old, '--out', old], 2, /already holds \d+ bytes/);
		assert.ok(fs.readFileSync(old).equals(before), 'the old image untouched');
		// One that assemble started (the rerun after an interruption or after it finished) is taken.
		const mine = path.join(dir, 'mine.img');
		ok(['assemble', '--bundle', b, '--out', mine]);
		assert.ok(same(mine, v2));
		assert.is(JSON.parse(ok(['assemble', '--bundle', b, '--out', mine, '--json'])).fetched.chunks, 0);
	},
);

t('a truncated or altered index, a corrupt or missing chunk, an untrusted signer and an unreadable seed are refused by name', () => {
	const b = packed();
	const out = path.join(dir, 'bad.img');
	const trunc = copy(b);
	fs.truncateSync(path.join(trunc, 'image.caibx'), fs.statSync(path.join(trunc, 'image.caibx')).size - 40);
	refused(['assemble', '--bundle', trunc, '--out', out], 3, /chunk index .* is \d+ bytes with sha256 .* truncated or altered/);
	const corrupt = copy(b);
	const f = needed(corrupt);
	const bytes = fs.readFileSync(f);
	bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0xff;
	fs.writeFileSync(f, bytes);
	refused(['assemble', '--bundle', corrupt, '--out', out], 3, /serves chunk [0-9a-f]{64} with bytes that do not hash to its id, twice/);
	const missing = copy(b);
	fs.rmSync(needed(missing));
	refused(['assemble', '--bundle', missing, '--out', path.join(dir, 'bad2.img')], 3, /chunk store .* lacks chunk [0-9a-f]{64}/);
	const key = path.join(dir, 'k1');
	const other = path.join(dir, 'k2');
	ok(['keygen', '--out', key]);
	ok(['keygen', '--out', other]);
	const signed = path.join(dir, 'signed');
	ok(['pack', v2, '--out', signed, '--chunks', '--sign', `${key}.key`, ...ROOT]);
	refused(['assemble', '--bundle', signed, '--trust', `${other}.pub`, '--out', out], 3, /sign/);
	refused(
		['assemble', '--bundle', b, '--seed', path.join(dir, 'nope.img'), '--out', out],
		2,
		/seed .*nope\.img is not a readable file or block device/,
	);
	// v2's index handed to pack for v1.
	refused(
		[
			'pack',
			v1,
			'--out',
			path.join(dir, 'x'),
			'--chunks',
			'--chunk-index',
			path.join(b, 'image.caibx'),
			'--chunk-store',
			path.join(b, 'chunks'),
			...ROOT,
		],
		3,
		/chunk index .* describes|names chunk \d+ .* do not have/,
	);
	refused(
		['pack', v2, '--out', path.join(dir, 'x'), '--chunks', '--chunk-size', '4K:1K:16K', ...ROOT],
		2,
		/--chunk-size 4K:1K:16K is not usable/,
	);
	refused(['pack', v2, '--out', path.join(dir, 'x'), '--chunk-store', dir, ...ROOT], 2, /--chunk-store needs --chunks/);
});

t.run();
