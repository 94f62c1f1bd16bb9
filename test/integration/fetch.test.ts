// `reimage fetch URL --out DIR` against a real nginx on 127.0.0.1, with a
// fault proxy in front that counts the bytes it passed: a cut or killed
// download continues from the bytes on hand (no byte twice), a file changed
// on the server restarts, a server that ignores Range sends it whole again,
// corrupt bytes are refused with the file named, a stall times out, 503s are
// retried, TLS is verified (a site CA with --ca), a bad signature stops it
// before the image is asked for.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN, reimage, writeManifest, type Manifest } from '../helpers/reimage.ts';
import { describe, flipBytes, sha256, tmpDir } from '../helpers/sys.ts';
import { makeTls, reimageAsync, startNginx, startProxy, type Nginx, type FaultProxy } from '../helpers/web.ts';

const t = suite('fetch');
let web: Nginx;
let proxy: FaultProxy;
let tls: ReturnType<typeof makeTls>;
let image = '';
let size = 0;

t.before(async () => {
	const root = tmpDir('reimage-www-');
	const m = bigBundle(path.join(root, 'b'));
	image = `/b/${m.image.file}`;
	size = m.image.size;
	tls = makeTls();
	web = await startNginx(root, { tls, slowRate: '2m' });
	proxy = await startProxy(web.port);
});
t.after(async () => {
	await proxy.stop();
	await web.stop();
});
t.before.each(() => {
	proxy.fault = {};
	proxy.served.clear();
	proxy.requests.length = 0;
});

/**
 * A bundle to fetch and verify, made without pack (the fixtures' image
 * compresses to a few KiB, too small to cut in places): a 4 MiB uncompressed
 * image of random bytes (codec none, no block map) and a retention list.
 */
function bigBundle(dir: string): Manifest {
	fs.mkdirSync(dir, { recursive: true });
	const bytes = crypto.randomBytes(4 << 20);
	const sum = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
	const list = Buffer.from('/etc/machine-id\n');
	fs.writeFileSync(path.join(dir, 'image.raw'), bytes);
	fs.writeFileSync(path.join(dir, 'retention.list'), list);
	const m: Manifest = {
		format: 'reimage-bundle/1',
		created: new Date().toISOString(),
		tool: 'test',
		image: { file: 'image.raw', codec: 'none', size: bytes.length, sha256: sum(bytes) },
		raw: { size: bytes.length, sha256: sum(bytes) },
		table: { label: 'gpt', id: '00000000-0000-0000-0000-000000000001', sectorSize: 512, partitions: [] },
		mounts: [{ path: '/', spec: { kind: 'LABEL', value: 'root' }, partition: 1, fstype: 'ext4' }],
		retention: { file: 'retention.list', sha256: sum(list) },
	};
	writeManifest(dir, m);
	return m;
}

const out = () => path.join(tmpDir('reimage-fetched-'), 'bundle');
const fetch = (url: string, dir: string, ...more: string[]) => reimageAsync(BIN, ['fetch', url, '--out', dir, ...more]);

async function sameAsServer(dir: string): Promise<void> {
	const v = reimage(['verify', '--bundle', dir]);
	assert.is(v.status, 0, describe(v));
	assert.is(await sha256(path.join(dir, path.basename(image))), await sha256(path.join(web.root, image)));
}

t('a transfer cut twice continues from the bytes on hand: every byte of the image crosses once', async () => {
	proxy.fault = { path: image, cutAfter: Math.floor(size / 3), cuts: 2 };
	const dir = out();
	const r = await fetch(proxy.url('/b/'), dir);
	assert.is(r.status, 0, describe(r));
	assert.is(proxy.served.get(image), size, 'bytes of the image the server sent');
	assert.ok(proxy.requests.filter((q) => q.path === image && q.range && q.status === 206).length >= 2, 'resumed with Range, answered 206');
	assert.match(r.stderr, /trying again .* from byte \d+/);
	await sameAsServer(dir);
	proxy.served.clear();
	const again = await fetch(proxy.url('/b/'), dir);
	assert.is(again.status, 0, describe(again));
	assert.is(proxy.served.get(image), undefined, 'a complete, checked bundle is never fetched again');
	assert.match(again.stdout, /0 bytes downloaded now, \d files already on hand/);
});

t('killed mid-file and run again: it continues where it stopped, no byte twice', async () => {
	const half = Math.floor(size / 2);
	proxy.fault = { path: image, stallAt: half };
	const dir = out();
	const child = spawn(BIN, ['fetch', proxy.url('/b/'), '--out', dir], { stdio: 'ignore' });
	const closed = new Promise((r) => child.on('close', r));
	// Killed once the half the proxy passed is in the partial file (the proxy then stalls).
	const part = path.join(dir, `${path.basename(image)}.part`);
	const onDisk = () => (fs.existsSync(part) ? fs.statSync(part).size : 0);
	for (let i = 0; i < 400 && onDisk() < half; i++) await new Promise((r) => setTimeout(r, 50));
	child.kill('SIGKILL');
	await closed;
	assert.is(proxy.served.get(image), half, 'the first run got half');
	assert.not.ok(fs.existsSync(path.join(dir, 'manifest.json')), 'no manifest: not a bundle yet');
	proxy.fault = {};
	const r = await fetch(proxy.url('/b/'), dir);
	assert.is(r.status, 0, describe(r));
	assert.match(r.stderr, new RegExp(`continuing from byte ${half}`));
	assert.is(proxy.served.get(image), size, 'the second run fetched only the rest');
	await sameAsServer(dir);
});

t('a file changed on the server between attempts restarts from zero (If-Range), never splices', async () => {
	proxy.fault = { path: image, cutAfter: 4096, cuts: 1 };
	const dir = out();
	const first = await fetch(proxy.url('/b/'), dir, '--retries', '0');
	assert.is(first.status, 9, describe(first));
	assert.match(first.stderr, /run again \(it continues where it stopped\)/);
	// A new version of the file (same bytes here, so the manifest still fits): nginx's ETag changes with its mtime.
	const f = path.join(web.root, image);
	fs.utimesSync(f, new Date(), new Date(Date.now() + 5000));
	const r = await fetch(proxy.url('/b/'), dir);
	assert.is(r.status, 0, describe(r));
	assert.match(r.stderr, /the file changed, or the server ignores ranges\): fetching it from the start/, r.stderr);
	assert.is(proxy.served.get(image), 4096 + size);
	await sameAsServer(dir);
});

t('a server that ignores Range: the file comes again whole and is checked', async () => {
	proxy.fault = { path: image, cutAfter: 8192, cuts: 1, ignoreRange: true };
	const dir = out();
	const r = await fetch(proxy.url('/b/'), dir);
	assert.is(r.status, 0, describe(r));
	assert.is(proxy.served.get(image), 8192 + size);
	await sameAsServer(dir);
});

t('corrupt bytes on the server are refused with the file named; no bundle is left', async () => {
	const bad = path.join(tmpDir('reimage-bad-'), 'bad');
	const m = bigBundle(bad);
	flipBytes(path.join(bad, m.image.file), Math.floor(m.image.size / 2));
	fs.renameSync(bad, path.join(web.root, 'bad'));
	const dir = out();
	const r = await fetch(web.url('/bad/'), dir);
	assert.is(r.status, 3, describe(r));
	assert.match(
		r.stderr,
		new RegExp(
			`${m.image.file} downloaded from http://.* is \\d+ bytes with sha256 [0-9a-f]{64} but the manifest says .*corrupt or altered`,
		),
		r.stderr,
	);
	assert.not.ok(fs.existsSync(path.join(dir, 'manifest.json')));
	assert.not.ok(fs.existsSync(path.join(dir, `${m.image.file}.part`)), 'the bad bytes are not kept to resume from');
});

t('a stalled transfer times out, is retried, and ends with a source error (exit 9)', async () => {
	proxy.fault = { path: image, stallAt: 1000 };
	const t0 = Date.now();
	const r = await fetch(proxy.url('/b/'), out(), '--stall-timeout', '1', '--retries', '1');
	assert.is(r.status, 9, describe(r));
	assert.match(r.stderr, /no byte for 1 s \(stalled\)/, r.stderr);
	assert.ok(Date.now() - t0 < 15_000);
});

t('503 answers are retried with backoff; a 404 is not', async () => {
	proxy.fault = { path: image, fail503: 2 };
	const r = await fetch(proxy.url('/b/'), out());
	assert.is(r.status, 0, describe(r));
	assert.match(r.stderr, /answered HTTP 503/);
	const missing = await fetch(web.url('/nothing/'), out());
	assert.is(missing.status, 3, describe(missing));
	assert.match(missing.stderr, /the bundle manifest \(manifest\.json\) at http:\/\/.*\/nothing\/ cannot be read/);
	const notFound = await fetch(web.url('/b/'), out(), '--auth-file', '/nonexistent');
	assert.is(notFound.status, 2, 'an unreadable auth file is a usage error');
});

t('TLS is verified: a site CA given with --ca is trusted, without it the certificate is refused', async () => {
	const url = `https://127.0.0.1:${web.tlsPort}/b/`;
	const r = await fetch(url, out(), '--ca', tls.ca);
	assert.is(r.status, 0, describe(r));
	const no = await fetch(url, out(), '--retries', '0');
	assert.is(no.status, 9, describe(no));
	assert.match(no.stderr, /TLS certificate of 127\.0\.0\.1:\d+ is not trusted .*--ca FILE/);
});

t('fetch --trust: a bad signature stops it before the image is asked for', async () => {
	const keys = tmpDir('reimage-keys-');
	assert.is(reimage(['keygen', '--out', path.join(keys, 'fleet')]).status, 0);
	const unsigned = await fetch(proxy.url('/b/'), out(), '--trust', path.join(keys, 'fleet.pub'));
	assert.is(unsigned.status, 3, describe(unsigned));
	assert.match(unsigned.stderr, /is not signed/);
	assert.is(proxy.served.get(image), undefined, 'not one byte of the image was fetched');
});

t.run();
