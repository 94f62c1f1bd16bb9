// `reimage run --bundle http://…` of a chunked bundle served by a real nginx
// behind the fault proxy that counts what it passed: the image is assembled
// in RAM from the target disk (a loop device holding v1) and only the chunks
// v1 lacks cross the wire, never the compressed image; the run keeps the
// index in the new system and the next run seeds from it without chunking
// the disk, fetching (not using) what changed on the disk since; a run
// killed mid-way writes nothing and its rerun moves no chunk twice.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChunkIndex, chunkStart, idHex, indexCount, parseIndex } from '../../src/chunks/caibx.ts';
import { chunker } from '../../src/chunks/chunker.ts';
import { scanChunks } from '../../src/chunks/scan.ts';
import { REPO } from '../helpers/fixtures.ts';
import { BIN, dropLeftBy, reimage, RUNDIR, runState } from '../helpers/reimage.ts';
import { checkResult } from '../helpers/schema.ts';
import { attachLoop, describe, detachLoop, flipBytes, rmTmp, sh, tmpDir } from '../helpers/sys.ts';
import { reimageAsync, startNginx, startProxy, type FaultProxy, type Nginx } from '../helpers/web.ts';

const t = suite('seedrun');
const dir = tmpDir('reimage-seedrun-');
const v1 = path.join(dir, 'v1.img');
const v2 = path.join(dir, 'v2.img');
let web: Nginx;
let proxy: FaultProxy;
let www = '';
const KEPT = '/var/lib/reimage/last.caibx';

const run = (dev: string, ...more: string[]) =>
	reimageAsync(BIN, ['run', '--bundle', proxy.url('/b2/'), '--target', dev, '--no-retain', '--yes', '--json', ...more]);
const chunkPaths = () => [...proxy.served.keys()].filter((p) => p.startsWith('/b2/chunks/'));
const chunkBytes = () => chunkPaths().reduce((n, p) => n + (proxy.served.get(p) ?? 0), 0);
type Assembly = {
	chunks: number;
	seeds: { name: string; chunks: number; stale: number; scanned: number }[];
	missing: { chunks: number };
	fetched: { chunks: number; wire: number };
	cached: { chunks: number };
	image: { size: number };
	sha256: string;
};

t.before(async () => {
	sh('bash', [path.join(REPO, 'test', 'bench', 'make-pair.sh'), '/usr/lib/x86_64-linux-gnu/gconv', '16', dir]);
	www = tmpDir('reimage-seedrun-www-');
	const p = reimage(['pack', v2, '--out', path.join(www, 'b2'), '--chunks', '--mount', 'PARTLABEL=root:/']);
	assert.is(p.status, 0, describe(p));
	// v1 as a chunked bundle, and v2 again with a delta file for machines v1 was written to.
	for (const [img, name, more] of [
		[v1, 'b1', []],
		[v2, 'b2d', ['--delta-from', path.join(www, 'b1')]],
	] as const) {
		const q = reimage(['pack', img, '--out', path.join(www, name), '--chunks', '--mount', 'PARTLABEL=root:/', ...more]);
		assert.is(q.status, 0, describe(q));
	}
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

t(
	'run of a chunked bundle URL seeds from the target disk: only missing chunks cross the wire; the kept index seeds the next run, a changed chunk is fetched, not used',
	async () => {
		const disk = path.join(dir, 'disk.img');
		fs.copyFileSync(v1, disk);
		const dev = attachLoop(disk);
		try {
			const zst = fs.statSync(path.join(www, 'b2', 'image.raw.zst')).size;
			const raw = JSON.parse(fs.readFileSync(path.join(www, 'b2', 'manifest.json'), 'utf8')).raw.sha256 as string;
			const r = await run(dev);
			assert.is(r.status, 0, r.stderr);
			const a = checkResult(r.stdout).assembly as Assembly;
			if (process.env.SEEDRUN_LOG) console.log(r.stderr);
			assert.ok(!proxy.served.has('/b2/image.raw.zst'), 'the compressed image is never asked for');
			assert.is(a.seeds[0]?.name, dev, 'the target disk is the seed');
			assert.ok(a.seeds[0]!.chunks > 0 && a.seeds[0]!.scanned > 0, 'the whole disk was chunked (no kept index yet)');
			assert.is(a.fetched.chunks, a.missing.chunks);
			assert.is(chunkPaths().length, a.missing.chunks, 'one request per missing chunk');
			assert.is(chunkBytes(), a.fetched.wire);
			assert.ok(chunkBytes() * 3 < zst, `far fewer bytes than the compressed image (${chunkBytes()} vs ${zst})`);
			assert.is(a.sha256, raw, 'the assembled image is the signed raw image');
			console.log(`seedrun: ${chunkBytes()} chunk bytes over the wire vs ${zst} compressed image; ${a.image.size} bytes in RAM`);
			// The index is kept in the new system.
			const kept = path.join(dir, 'kept.caibx');
			sh('debugfs', ['-R', `dump ${KEPT} ${kept}`, `${dev}?offset=1048576`]);
			assert.ok(fs.readFileSync(kept).equals(fs.readFileSync(path.join(www, 'b2', 'image.caibx'))), 'the kept index is the bundle index');

			// The disk changed since (three chunks' bytes flipped): the next run reads the kept index, checks each chunk it takes, and fetches the changed ones.
			const index = parseIndex(fs.readFileSync(kept));
			if (typeof index === 'string') throw new Error(index);
			const v2bytes = fs.readFileSync(v2);
			// Chunks whose id the index holds once: a seed takes a chunk from its first place, and that is the one flipped.
			const count = new Map<string, number>();
			for (let i = 0; i < indexCount(index); i++) count.set(idHex(index, i), (count.get(idHex(index, i)) ?? 0) + 1);
			const flipped: number[] = [];
			for (let i = Math.floor(indexCount(index) / 3); flipped.length < 3 && i < indexCount(index); i += 7) {
				const at = (index.ends[i - 1] as number) + 8;
				if (count.get(idHex(index, i)) === 1 && v2bytes.subarray(at, at + 16).some((b) => b !== 0)) {
					flipBytes(disk, at);
					flipped.push(i);
				}
			}
			sh('blockdev', ['--flushbufs', dev]);
			proxy.served.clear();
			// plan says where the chunks come from (as fetch --dry-run does); the chunks it brought stay for the run.
			const plan = await reimageAsync(BIN, ['plan', '--bundle', proxy.url('/b2/'), '--target', dev, '--no-retain']);
			assert.is(plan.status, 0, plan.stderr);
			assert.match(plan.stderr, /the index kept by the last run \(\/var\/lib\/reimage\/last\.caibx/);
			const stale = Number(/seed \/dev\/loop\d+: \d+ chunks, .* \((\d+) changed since, downloaded\)/.exec(plan.stdout)?.[1]);
			assert.ok(stale >= 1, `the changed chunks were found stale:\n${plan.stdout}`);
			assert.match(plan.stdout, new RegExp(`download: \\d+ chunks, .* raw; ${stale} downloaded \\(`));
			assert.ok(
				flipped.every((i) => proxy.served.has(`/b2/chunks/${idHex(index, i).slice(0, 4)}/${idHex(index, i)}.cacnk`)),
				'each changed chunk came from the server',
			);
			proxy.served.clear();
			const again = await run(dev);
			assert.is(again.status, 0, again.stderr);
			const b = JSON.parse(again.stdout).assembly as Assembly;
			assert.is(b.seeds[0]?.scanned ?? 0, 0, 'the disk was not chunked');
			assert.is(b.seeds[0]?.stale, stale, 'each changed chunk read, found changed, not used');
			assert.is(b.fetched.chunks, 0, 'what the plan downloaded is not downloaded again');
			assert.is(b.cached.chunks, stale);
			assert.is(chunkBytes(), 0);
			assert.is(b.sha256, raw);
		} finally {
			detachLoop(dev);
		}
	},
);

t(
	'a machine v1 was written to brings v2 through the delta made against the index it kept: no index, no chunk but a changed one from the store; the run after a plan brings neither again',
	async () => {
		const disk = path.join(dir, 'disk-delta.img');
		fs.copyFileSync(v2, disk);
		const dev = attachLoop(disk);
		try {
			const first = await reimageAsync(BIN, ['run', '--bundle', proxy.url('/b1/'), '--target', dev, '--no-retain', '--yes']);
			assert.is(first.status, 0, first.stderr);
			// One chunk v2 shares with v1 changed on the disk since: the delta points at it, the run reads it, finds it changed and fetches it instead.
			const [i1, i2] = ['b1', 'b2d'].map((b) => {
				const x = parseIndex(fs.readFileSync(path.join(www, b, 'image.caibx')));
				if (typeof x === 'string') throw new Error(x);
				return x;
			}) as [ChunkIndex, ChunkIndex];
			const ids = (x: ChunkIndex) => Array.from({ length: indexCount(x) }, (_, j) => idHex(x, j));
			const inV2 = new Set(ids(i2));
			const once = ids(i1).reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());
			const v1bytes = fs.readFileSync(v1);
			let changed = -1;
			for (let j = Math.floor(indexCount(i1) / 2); changed < 0 && j < indexCount(i1); j++) {
				const at = chunkStart(i1, j) + 8;
				if (once.get(idHex(i1, j)) === 1 && inV2.has(idHex(i1, j)) && v1bytes.subarray(at, at + 16).some((b) => b !== 0)) changed = j;
			}
			assert.ok(changed >= 0, 'v1 and v2 share a chunk');
			flipBytes(disk, chunkStart(i1, changed) + 8);
			sh('blockdev', ['--flushbufs', dev]);
			const m = JSON.parse(fs.readFileSync(path.join(www, 'b2d', 'manifest.json'), 'utf8')) as {
				raw: { sha256: string };
				chunks: { deltas: { file: string; size: number; sha256: string }[] };
			};
			const delta = m.chunks.deltas[0]!;
			type WithDelta = Assembly & { delta?: { file: string; bytes: number } };
			// A run killed while the delta comes (the server stalls it half-way): the plan after it continues the file from there.
			const half = Math.floor(delta.size / 2);
			proxy.fault = { path: `/b2d/${delta.file}`, stallAt: half };
			const state = runState();
			const killed = spawn(BIN, ['run', '--bundle', proxy.url('/b2d/'), '--target', dev, '--no-retain', '--yes'], { stdio: 'ignore' });
			const closed = new Promise((r) => killed.on('close', r));
			const part = path.join(RUNDIR, 'chunk-cache', `${delta.sha256}.rdelta.part`);
			const onDisk = () => (fs.existsSync(part) ? fs.statSync(part).size : 0);
			for (let i = 0; i < 600 && onDisk() < half; i++) await new Promise((r) => setTimeout(r, 50));
			killed.kill('SIGKILL');
			await closed;
			dropLeftBy(state);
			assert.is(onDisk(), half, 'the killed run left half the delta in the chunk cache');
			proxy.fault = {};
			// A plan then (it assembles too): it brings the rest of the delta and the changed chunk; the run after it brings neither again.
			proxy.served.clear();
			const plan = await reimageAsync(BIN, ['plan', '--bundle', proxy.url('/b2d/'), '--target', dev, '--no-retain', '--json']);
			assert.is(plan.status, 0, plan.stderr);
			const p = checkResult(plan.stdout).assembly as WithDelta;
			assert.is(p.delta?.file, delta.file);
			assert.match(plan.stderr, /delta delta-[0-9a-f]{16}\.rdelta against the index of \/dev\/loop\d+/);
			assert.match(plan.stderr, new RegExp(`continuing from byte ${half}`));
			assert.is(proxy.served.get(`/b2d/${delta.file}`), delta.size - half, 'no byte of the delta twice');
			// The changed chunk, and any other the first run's own files (the kept index, its report) landed on in the new
			// system (the allocator decides where: none on most runs), come from the store, checked; every other chunk from
			// the disk or the delta.
			const stale = p.seeds.reduce((n, x) => n + x.stale, 0);
			assert.ok(stale >= 1, 'the changed chunk was read, found changed, not used');
			assert.is(p.fetched.chunks, stale, 'no chunk from the store but those that changed on the disk since');
			const flipped = idHex(i1, changed);
			assert.ok(proxy.served.has(`/b2d/chunks/${flipped.slice(0, 4)}/${flipped}.cacnk`), 'the changed chunk came from the store');
			const served = () => [...proxy.served.keys()].filter((k) => k.startsWith('/b2d/') && !k.startsWith('/b2d/manifest.json.'));
			assert.equal(
				served()
					.filter((k) => !k.startsWith('/b2d/chunks/'))
					.sort(),
				[`/b2d/${delta.file}`, '/b2d/image.bmap', '/b2d/manifest.json'].sort(),
				'the delta, the block map and the manifest (and its signatures, absent here): no index',
			);
			assert.is(served().filter((k) => k.startsWith('/b2d/chunks/')).length, stale);
			const sent = [...proxy.served].filter(([k]) => k.startsWith('/b2d/')).reduce((n, [, b]) => n + b, 0);
			console.log(
				`seedrun: v1→v2 through the delta ${sent} bytes over the wire (${stale} of ${p.chunks} chunks changed on the disk since) vs ${fs.statSync(path.join(www, 'b2d', 'image.raw.zst')).size} compressed image`,
			);
			proxy.served.clear();
			const r = await reimageAsync(BIN, ['run', '--bundle', proxy.url('/b2d/'), '--target', dev, '--no-retain', '--yes', '--json']);
			assert.is(r.status, 0, r.stderr);
			const a = checkResult(r.stdout).assembly as WithDelta;
			assert.is(a.delta?.file, delta.file, 'the delta the plan brought, decoded again');
			assert.match(r.stderr, /delta delta-[0-9a-f]{16}\.rdelta against the index of \/dev\/loop\d+ \([^)]*already on hand\)/);
			assert.equal([a.fetched.chunks, a.cached.chunks], [0, stale]);
			assert.equal(
				served().sort(),
				['/b2d/image.bmap', '/b2d/manifest.json'],
				'nothing the plan brought, delta or chunk, crossed again (was: the delta)',
			);
			assert.is(a.sha256, m.raw.sha256);
		} finally {
			detachLoop(dev);
		}
	},
);

t('a run killed mid-way writes nothing, and its rerun moves no chunk twice', async () => {
	const disk = path.join(dir, 'disk2.img');
	fs.copyFileSync(v1, disk);
	const dev = attachLoop(disk);
	try {
		const store = path.join(www, 'b2', 'chunks');
		const file = (id: string) => path.join(store, id.slice(0, 4), `${id}.cacnk`);
		const index = parseIndex(fs.readFileSync(path.join(www, 'b2', 'image.caibx')));
		if (typeof index === 'string') throw new Error(index);
		// The chunks v1 lacks: those the run downloads.
		const inV1 = new Set<string>();
		await scanChunks(v1, chunker(index.sizes), (c) => void inV1.add(c.id.toString('hex')));
		const ids = [...new Set(Array.from({ length: indexCount(index) }, (_, i) => idHex(index, i)))].filter(
			(id) => !inV1.has(id) && fs.statSync(file(id)).size > 100,
		);
		const stalled = ids[Math.floor(ids.length / 2)] as string;
		const key = `/b2/chunks/${stalled.slice(0, 4)}/${stalled}.cacnk`;
		proxy.fault = { path: key, stallAt: 0 };
		const child = spawn(BIN, ['run', '--bundle', proxy.url('/b2/'), '--target', dev, '--no-retain', '--yes', '--jobs', '1'], {
			stdio: 'ignore',
		});
		const gone = new Promise((r) => child.on('exit', r));
		for (let i = 0; i < 400 && !proxy.requests.some((q) => q.path === key); i++) await new Promise((r) => setTimeout(r, 50));
		assert.ok(
			proxy.requests.some((q) => q.path === key),
			'the run reached the stalled chunk',
		);
		const k0 = Date.now();
		child.kill('SIGTERM');
		await gone;
		console.log(`seedrun: killed run ended in ${Date.now() - k0} ms`);
		assert.ok(fs.readFileSync(disk).equals(fs.readFileSync(v1)), 'the killed run wrote nothing');
		const first = new Map(proxy.served);
		assert.ok(chunkPaths().length > 1, `some chunks came before the kill (${chunkPaths().length})`);

		proxy.fault = {};
		proxy.served.clear();
		const r = await run(dev);
		assert.is(r.status, 0, r.stderr);
		const a = JSON.parse(r.stdout).assembly as Assembly;
		assert.ok(a.cached.chunks > 0, 'the chunks of the killed run were on hand');
		const twice = chunkPaths().filter((p) => (first.get(p) ?? 0) > 0 && p !== key);
		assert.equal(twice, [], 'no chunk served by both runs');
		for (const id of ids) {
			const p = `/b2/chunks/${id.slice(0, 4)}/${id}.cacnk`;
			if (p !== key) assert.is((first.get(p) ?? 0) + (proxy.served.get(p) ?? 0), fs.statSync(file(id)).size, `chunk ${id} crossed once`);
		}
	} finally {
		detachLoop(dev);
	}
});

t.run();
