// `reimage fetch URL --out DIR --seed PATH` of a chunked bundle served by a
// real nginx behind the fault proxy that counts the bytes it passed: with the
// v1 image as seed only the chunks v1 lacks cross the wire (the dry run says
// how many first); a fetch killed mid-way and run again moves no chunk twice;
// a corrupt chunk on the server is refused by name; the fetched directory is a
// bundle `reimage run` writes onto a loop device.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIndex, idHex, indexCount } from '../../src/chunks/caibx.ts';
import { REPO } from '../helpers/fixtures.ts';
import { BIN, reimage } from '../helpers/reimage.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	flipBytes,
	makeBlank,
	partNode,
	partxUpdate,
	rmTmp,
	sh,
	tmpDir,
	withMount,
} from '../helpers/sys.ts';
import { reimageAsync, startNginx, startProxy, type FaultProxy, type Nginx } from '../helpers/web.ts';

const t = suite('seedfetch');
const dir = tmpDir('reimage-seedfetch-');
const v1 = path.join(dir, 'v1.img');
const v2 = path.join(dir, 'v2.img');
const ROOT = ['--mount', 'PARTLABEL=root:/'];
let web: Nginx;
let proxy: FaultProxy;
let www = '';

function ok(args: string[]): string {
	const r = reimage(args);
	assert.is(r.status, 0, describe(r));
	return r.stdout;
}
const out = () => path.join(tmpDir('reimage-seedfetch-out-'), 'b');
const fetch = (bundle: string, dest: string, ...more: string[]) =>
	reimageAsync(BIN, ['fetch', proxy.url(`/${bundle}/`), '--out', dest, ...more]);
// Body bytes the proxy passed for the bundle's chunk files.
const chunkBytes = (bundle: string) => [...proxy.served].filter(([p]) => p.startsWith(`/${bundle}/chunks/`)).reduce((n, [, b]) => n + b, 0);
const same = (a: string, b: string) => fs.readFileSync(a).equals(fs.readFileSync(b));

t.before(async () => {
	sh('bash', [path.join(REPO, 'test', 'bench', 'make-pair.sh'), '/usr/lib/x86_64-linux-gnu/gconv', '16', dir]);
	www = tmpDir('reimage-seedfetch-www-');
	ok(['pack', v1, '--out', path.join(dir, 'b1'), '--chunks', ...ROOT]);
	ok(['pack', v2, '--out', path.join(www, 'b2'), '--chunks', ...ROOT]);
	// The same v2 with a delta file for machines on v1.
	ok(['pack', v2, '--out', path.join(www, 'b2d'), '--chunks', '--delta-from', path.join(dir, 'b1'), ...ROOT]);
	web = await startNginx(www);
	proxy = await startProxy(web.port);
});
t.after(async () => {
	await proxy.stop();
	await web.stop();
	rmTmp(dir);
	rmTmp(www);
});
t.before.each(() => {
	proxy.fault = {};
	proxy.served.clear();
	proxy.requests.length = 0;
});

t('with v1 as seed only the missing chunks cross the wire: the dry run says how many first, a rerun fetches nothing', async () => {
	const d = out();
	const zst = fs.statSync(path.join(www, 'b2', 'image.raw.zst')).size;
	const dry = await fetch('b2', d, '--seed', v1, '--dry-run', '--json');
	assert.is(dry.status, 0, dry.stderr);
	const plan = JSON.parse(dry.stdout);
	assert.is(plan.outcome, 'success');
	assert.is(chunkBytes('b2'), 0, 'a dry run downloads no chunk');
	assert.ok(!fs.existsSync(path.join(d, 'manifest.json')), 'a dry run leaves no bundle');
	assert.ok(plan.assembly.missing.chunks > 0 && plan.assembly.missing.wire > 0);
	// v1's own index as the seed finds the same chunks without chunking v1.
	const byIndex = JSON.parse(
		(await fetch('b2', out(), '--seed-index', `${path.join(dir, 'b1', 'image.caibx')}:${v1}`, '--dry-run', '--json')).stdout,
	);
	assert.is(byIndex.assembly.missing.chunks, plan.assembly.missing.chunks);

	const r = await fetch('b2', d, '--seed', v1, '--json');
	assert.is(r.status, 0, r.stderr);
	const doc = JSON.parse(r.stdout);
	const wire = chunkBytes('b2');
	assert.is(doc.assembly.fetched.chunks, plan.assembly.missing.chunks);
	assert.is(wire, plan.assembly.missing.wire, 'the dry run said the bytes that came');
	assert.ok(wire * 3 < zst, `far fewer bytes than the compressed image (${wire} vs ${zst})`);
	// The index comes as its zstd copy, never the plain one.
	assert.ok(!proxy.served.has('/b2/image.caibx'), 'the plain index is not downloaded');
	// Asked once by each dry run (the run finds it in DIR): the bytes of one download.
	const asks = proxy.requests.filter((q) => q.path === '/b2/image.caibx.zst' && q.status === 200).length;
	const idx = (proxy.served.get('/b2/image.caibx.zst') ?? 0) / Math.max(1, asks);
	assert.is(idx, fs.statSync(path.join(www, 'b2', 'image.caibx.zst')).size);
	assert.ok(idx < fs.statSync(path.join(www, 'b2', 'image.caibx')).size, 'smaller than the plain index');
	console.log(
		`seedfetch: ${wire} chunk bytes + ${idx} index bytes over the wire vs ${zst} compressed image (${((100 * wire) / zst).toFixed(1)} % + ${((100 * idx) / zst).toFixed(1)} %)`,
	);
	assert.ok(!proxy.served.has('/b2/image.raw.zst'), 'the compressed image is never asked for');
	assert.ok(same(path.join(d, 'assembled.img'), v2));
	assert.ok(same(path.join(d, 'manifest.json'), path.join(www, 'b2', 'manifest.json')), 'the signed manifest is kept as it is');
	ok(['verify', '--bundle', d]);

	proxy.served.clear();
	const again = await fetch('b2', d, '--seed', v1, '--json');
	assert.is(again.status, 0, again.stderr);
	assert.is(JSON.parse(again.stdout).assembly.fetched.chunks, 0);
	assert.is(chunkBytes('b2'), 0, 'a rerun downloads no chunk');

	// The signed raw sha256 covers the assembled image: an altered byte is refused.
	const bad = path.join(path.dirname(d), 'altered');
	sh('cp', ['-a', d, bad]);
	flipBytes(path.join(bad, 'assembled.img'), 3 << 20);
	const v = reimage(['verify', '--bundle', bad]);
	assert.is(v.status, 3, describe(v));
	assert.match(v.stderr, /assembled\.img has sha256 [0-9a-f]{64} but the manifest says/);
});

t('fetch --seed of a bundle with no chunk index is refused before anything is downloaded (exit 2)', async () => {
	const plain = path.join(www, 'plain');
	fs.mkdirSync(plain);
	const m = JSON.parse(fs.readFileSync(path.join(www, 'b2', 'manifest.json'), 'utf8'));
	delete m.chunks;
	fs.writeFileSync(path.join(plain, 'manifest.json'), JSON.stringify(m));
	const r = await fetch('plain', out(), '--seed', v1);
	assert.is(r.status, 2, r.stderr);
	assert.match(r.stderr, /bundle http:\S+\/plain\/ has no chunk index .*: fetch it without --seed/);
	assert.equal(
		proxy.requests.map((q) => q.path).filter((p) => !p.includes('manifest.json')),
		[],
	);
});

t('a fetch killed mid-way and run again moves no chunk twice', async () => {
	const d = out();
	const store = path.join(www, 'b2', 'chunks');
	const file = (id: string) => path.join(store, id.slice(0, 4), `${id}.cacnk`);
	// The chunks a fetch with an empty seed asks for, in order; the stall is on one half-way (not a zero chunk: those are never fetched).
	const index = parseIndex(fs.readFileSync(path.join(www, 'b2', 'image.caibx')));
	if (typeof index === 'string') throw new Error(index);
	const ids = [...new Set(Array.from({ length: indexCount(index) }, (_, i) => idHex(index, i)))].filter(
		(id) => fs.statSync(file(id)).size > 100,
	);
	const stalled = ids[Math.floor(ids.length / 2)] as string;
	const key = `/b2/chunks/${stalled.slice(0, 4)}/${stalled}.cacnk`;
	proxy.fault = { path: key, stallAt: 0 };
	// An empty seed: every chunk must come from the server.
	const empty = path.join(dir, 'empty.img');
	fs.writeFileSync(empty, '');
	const child = spawn(BIN, ['fetch', proxy.url('/b2/'), '--out', d, '--seed', empty, '--jobs', '1'], { stdio: 'ignore' });
	const gone = new Promise((r) => child.on('exit', r));
	for (let i = 0; i < 400 && !proxy.requests.some((q) => q.path === key); i++) await new Promise((r) => setTimeout(r, 50));
	assert.ok(
		proxy.requests.some((q) => q.path === key),
		'the fetch reached the stalled chunk',
	);
	child.kill('SIGKILL');
	await gone;
	const first = new Map(proxy.served);
	const before = [...first.keys()].filter((p) => p.includes('/chunks/')).length;
	assert.ok(before > 1, `some chunks came before the kill (${before})`);

	proxy.fault = {};
	proxy.served.clear();
	const r = await fetch('b2', d, '--seed', empty, '--json');
	assert.is(r.status, 0, r.stderr);
	const twice = [...proxy.served.keys()].filter((p) => p.includes('/chunks/') && (first.get(p) ?? 0) > 0);
	assert.equal(twice, [], 'no chunk served by both runs');
	assert.ok(proxy.served.has(key));
	for (const id of ids) {
		const p = `/b2/chunks/${id.slice(0, 4)}/${id}.cacnk`;
		assert.is((first.get(p) ?? 0) + (proxy.served.get(p) ?? 0), fs.statSync(file(id)).size, `chunk ${id} crossed once`);
	}
	assert.ok(same(path.join(d, 'assembled.img'), v2));
});

t('a corrupt chunk on the server is refused by name (exit 3), fetched once more first, and leaves no bundle', async () => {
	const bad = path.join(www, 'bad');
	sh('cp', ['-a', path.join(www, 'b2'), bad]);
	const files = sh('find', [path.join(bad, 'chunks'), '-name', '*.cacnk'])
		.trim()
		.split('\n');
	const f = files.reduce((a, x) => (fs.statSync(x).size > fs.statSync(a).size ? x : a));
	const bytes = fs.readFileSync(f);
	bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0xff;
	fs.writeFileSync(f, bytes);
	const id = path.basename(f, '.cacnk');
	const d = out();
	const empty = path.join(dir, 'empty2.img');
	fs.writeFileSync(empty, '');
	const r = await fetch('bad', d, '--seed', empty);
	assert.is(r.status, 3, r.stderr);
	assert.match(
		r.stderr,
		new RegExp(`chunk store http://127\\.0\\.0\\.1:\\d+/bad/chunks/ serves chunk ${id} with bytes that do not hash to its id, twice`),
	);
	assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
	assert.is(proxy.requests.filter((q) => q.path.endsWith(`${id}.cacnk`)).length, 2, 'fetched once more before refusing');
	assert.ok(!fs.existsSync(path.join(d, 'manifest.json')), 'no usable bundle is left');
	const plain = reimage(['verify', '--bundle', d]);
	assert.is(plain.status, 3, describe(plain));
});

t('a bundle directory given by its manifest.json is a chunk store too; a compressed image left in DIR goes', () => {
	const d = out();
	fs.mkdirSync(d, { recursive: true });
	fs.writeFileSync(path.join(d, 'image.raw.zst'), 'an older plain fetch');
	const r = reimage(['fetch', path.join(www, 'b2', 'manifest.json'), '--out', d, '--seed', v1, '--json']);
	assert.is(r.status, 0, describe(r));
	assert.ok(JSON.parse(r.stdout).assembly.fetched.chunks > 0);
	assert.ok(same(path.join(d, 'assembled.img'), v2));
	assert.ok(!fs.existsSync(path.join(d, 'image.raw.zst')));
	ok(['verify', '--bundle', d]);
});

t('the fetched directory is a bundle run writes onto a loop device', async () => {
	const d = out();
	const r = await fetch('b2', d, '--seed', v1);
	assert.is(r.status, 0, r.stderr);
	const disk = path.join(dir, 'target.img');
	makeBlank(disk, 24 << 20);
	const dev = attachLoop(disk);
	try {
		ok(['run', '--bundle', d, '--target', dev, '--no-retain', '--yes', '--verify-written']);
		partxUpdate(dev);
		// v2's new file: the file system came from the assembled image.
		await withMount(partNode(dev, 1), (root) => assert.ok(fs.existsSync(path.join(root, 'usr', 'newpkg', 'blob'))));
	} finally {
		detachLoop(dev);
	}
});

// Body bytes the proxy passed for every file of BUNDLE.
const allBytes = (bundle: string) => [...proxy.served].filter(([p]) => p.startsWith(`/${bundle}/`)).reduce((n, [, b]) => n + b, 0);

t(
	"a machine holding v1's index fetches the delta file alone: no index, no chunk from the store, the same image; less than index + chunks",
	async () => {
		const m = JSON.parse(fs.readFileSync(path.join(www, 'b2d', 'manifest.json'), 'utf8')) as {
			chunks: { deltas: { from: string; file: string; size: number }[]; index: { zst: { size: number } } };
		};
		const [delta] = m.chunks.deltas;
		assert.ok(delta, 'pack --delta-from names the delta in the signed manifest');
		const seedIndex = `${path.join(dir, 'b1', 'image.caibx')}:${v1}`;
		// A dry run names the delta and what it weighs, and does not bring it.
		const dry = await fetch('b2d', out(), '--seed-index', seedIndex, '--dry-run', '--json');
		assert.is(dry.status, 0, dry.stderr);
		assert.equal((JSON.parse(dry.stdout) as { assembly: { delta?: unknown } }).assembly.delta, {
			file: delta.file,
			from: delta.from,
			bytes: delta.size,
		});
		const said = await fetch('b2d', out(), '--seed-index', seedIndex, '--dry-run');
		assert.match(said.stdout + said.stderr, /the delta delta-[0-9a-f]{16}\.rdelta \(.*\) would come instead/);
		assert.ok(!proxy.served.has(`/b2d/${delta.file}`), 'a dry run does not bring the delta');
		proxy.served.clear();
		// Cut once half-way: the download resumes (Range), never starting the file again.
		proxy.fault = { path: `/b2d/${delta.file}`, cutAfter: Math.floor(delta.size / 2), cuts: 1 };
		const d = out();
		const r = await fetch('b2d', d, '--seed-index', seedIndex, '--json');
		assert.is(r.status, 0, r.stderr);
		const doc = JSON.parse(r.stdout) as { assembly: { delta?: { file: string; bytes: number }; fetched: { chunks: number } } };
		assert.equal(doc.assembly.delta, { file: delta.file, from: delta.from, bytes: delta.size });
		assert.is(doc.assembly.fetched.chunks, 0);
		assert.is(chunkBytes('b2d'), 0, 'no chunk from the store');
		assert.ok(![...proxy.served.keys()].some((p) => p.includes('image.caibx')), 'no index downloaded');
		assert.is(proxy.served.get(`/b2d/${delta.file}`), delta.size, 'the delta crossed once, resumed after the cut');
		assert.ok(same(path.join(d, 'assembled.img'), v2));
		assert.ok(
			!fs.existsSync(path.join(d, delta.file)) && !fs.existsSync(path.join(d, 'delta.chunks')),
			'the delta and its chunks are gone once the image is whole',
		);
		const deltaWire = allBytes('b2d');
		// The same machine without the delta (the bundle without one): the index and the chunks.
		proxy.served.clear();
		const plain = await fetch('b2', out(), '--seed-index', seedIndex, '--json');
		assert.is(plain.status, 0, plain.stderr);
		assert.ok(deltaWire < allBytes('b2'), `the delta path moved ${deltaWire} bytes, the index and chunks ${allBytes('b2')}`);
		// The run reads the fetched directory as a bundle (the signature and raw sha256 over the assembled image).
		assert.is(reimage(['verify', '--bundle', d]).status, 0);
		// The same fetch again: the index is on hand as signed, so neither the delta nor the index nor a chunk comes again.
		proxy.served.clear();
		const again = await fetch('b2d', d, '--seed-index', seedIndex, '--json');
		assert.is(again.status, 0, again.stderr);
		assert.equal(
			[...proxy.served].filter(([p, n]) => n > 0 && !p.includes('manifest.json')).map(([p]) => p),
			[],
			'a finished fetch brings nothing again',
		);
	},
);

t(
	'a delta for another release, a damaged one, or one that decodes to another index is never used: the index and the store serve',
	async () => {
		// v2's own image as the seed index: no delta was made against it.
		const b2index = `${path.join(www, 'b2', 'image.caibx')}:${v2}`;
		const r = await fetch('b2d', out(), '--seed-index', b2index, '--json');
		assert.is(r.status, 0, r.stderr);
		assert.ok(![...proxy.served.keys()].some((p) => p.endsWith('.rdelta')), 'no delta asked for');
		// A damaged delta on the server (its signed sha256 no longer matches): warned about, then the index and chunks.
		const copy = path.join(www, 'b2x');
		sh('cp', ['-a', path.join(www, 'b2d'), copy]);
		const m = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8')) as { chunks: { deltas: { file: string }[] } };
		flipBytes(path.join(copy, m.chunks.deltas[0]!.file), 100);
		proxy.served.clear();
		const d = out();
		const bad = await fetch('b2x', d, '--seed-index', `${path.join(dir, 'b1', 'image.caibx')}:${v1}`, '--json');
		assert.is(bad.status, 0, bad.stderr);
		assert.match(
			bad.stderr,
			/the delta delta-[0-9a-f]{16}\.rdelta could not be brought from .*: the index and the chunk store are used instead/,
		);
		assert.ok(chunkBytes('b2x') > 0 && proxy.served.has('/b2x/image.caibx.zst'));
		assert.ok(same(path.join(d, 'assembled.img'), v2));
		assert.is((JSON.parse(bad.stdout) as { assembly: { delta?: unknown } }).assembly.delta, undefined);
		// A delta that matches its manifest entry (size, sha256) but decodes to another index (a delta of v1 against v1,
		// put in its place): refused by the signed index's digest, then the index and chunks.
		const wrong = path.join(www, 'b2w');
		sh('cp', ['-a', path.join(www, 'b2d'), wrong]);
		const selfDelta = path.join(tmpDir('reimage-seedfetch-self-'), 'b');
		ok(['pack', v1, '--out', selfDelta, '--chunks', '--delta-from', path.join(dir, 'b1'), ...ROOT]);
		type Entry = { from: string; file: string; size: number; sha256: string; raw: number };
		const own = (JSON.parse(fs.readFileSync(path.join(selfDelta, 'manifest.json'), 'utf8')) as { chunks: { deltas: Entry[] } }).chunks
			.deltas[0]!;
		const wm = JSON.parse(fs.readFileSync(path.join(wrong, 'manifest.json'), 'utf8')) as { chunks: { deltas: Entry[] } };
		const entry = wm.chunks.deltas[0]!;
		fs.rmSync(path.join(wrong, entry.file));
		fs.copyFileSync(path.join(selfDelta, own.file), path.join(wrong, entry.file));
		wm.chunks.deltas[0] = { ...entry, size: own.size, sha256: own.sha256, raw: own.raw };
		fs.writeFileSync(path.join(wrong, 'manifest.json'), JSON.stringify(wm, null, 2));
		proxy.served.clear();
		const w = out();
		const other = await fetch('b2w', w, '--seed-index', `${path.join(dir, 'b1', 'image.caibx')}:${v1}`, '--json');
		assert.is(other.status, 0, other.stderr);
		assert.match(
			other.stderr,
			/the delta delta-[0-9a-f]{16}\.rdelta from http:\S+\/b2w\/ (says it has \d+ chunks|gives an index that).*: the index and the chunk store are used instead/,
		);
		assert.is(proxy.served.get(`/b2w/${entry.file}`), own.size, 'the delta was brought whole');
		assert.ok(chunkBytes('b2w') > 0 && proxy.served.has('/b2w/image.caibx.zst'));
		assert.ok(same(path.join(w, 'assembled.img'), v2));
		assert.ok(!fs.existsSync(path.join(w, entry.file)), 'the refused delta is not kept');
		assert.is((JSON.parse(other.stdout) as { assembly: { delta?: unknown } }).assembly.delta, undefined);
	},
);

t('pack --delta-from refuses what it cannot make a delta from (exit 2), and needs --chunks', () => {
	const none = reimage(['pack', v2, '--out', out(), '--chunks', '--delta-from', path.join(dir, 'nosuch'), ...ROOT]);
	assert.is(none.status, 2, describe(none));
	assert.match(none.stderr, /--delta-from .*nosuch cannot be read: give an earlier bundle directory or its \.caibx/);
	const plain = reimage(['pack', v2, '--out', out(), '--chunks', '--delta-from', dir, ...ROOT]);
	assert.is(plain.status, 2, describe(plain));
	assert.match(plain.stderr, /--delta-from .*: no chunked bundle there/);
	const bare = reimage(['pack', v2, '--out', out(), '--delta-from', path.join(dir, 'b1'), ...ROOT]);
	assert.is(bare.status, 2, describe(bare));
	assert.match(bare.stderr, /--delta-from needs --chunks/);
});

t.run();
