// `reimage run|plan|verify --bundle http://…` against a real nginx: the
// manifest and signature are fetched and checked first, the files downloaded
// into the RAM stage and checked, and only then is the loop device written.
// A bad signature or corrupt bytes on the server write nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startEndpoint } from '../helpers/endpoint.ts';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { BIN, pack, readManifest, reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, flipBytes, sha256, sh, tmpDir } from '../helpers/sys.ts';
import { type FaultProxy, makeTls, type Nginx, reimageAsync, startNginx, startProxy, type Tls } from '../helpers/web.ts';

const t = suite('run --bundle URL');
let web: Nginx;
let proxy: FaultProxy;
let key = '';
let image = '';
let tls: Tls;

t.before(async () => {
	const keys = tmpDir('reimage-keys-');
	key = path.join(keys, 'fleet');
	assert.is(reimage(['keygen', '--out', key]).status, 0);
	const root = tmpDir('reimage-www-');
	const b = pack('zstd', { sign: `${key}.key`, retain: fixtures().list });
	sh('cp', ['-a', b, path.join(root, 'good')]);
	image = `/altered/${readManifest(b).image.file}`;
	// Signed by the fleet key, then the manifest altered: the signature no longer matches.
	sh('cp', ['-a', b, path.join(root, 'altered')]);
	const m = path.join(root, 'altered', 'manifest.json');
	fs.writeFileSync(m, fs.readFileSync(m, 'utf8').replace('"tool": "reimage', '"tool": "REimage'));
	// Signed, intact manifest; the image's bytes changed on the server.
	sh('cp', ['-a', b, path.join(root, 'corrupt')]);
	flipBytes(path.join(root, 'corrupt', readManifest(b).image.file), 4096);
	tls = makeTls();
	web = await startNginx(root, { tls, basicAuth: { user: 'fleet', password: 's3cret' } });
	proxy = await startProxy(web.port);
});
t.after(async () => {
	await proxy.stop();
	await web.stop();
});

t('run --bundle http://…/ reimages a loop device end to end; verify and plan take the URL too', async () => {
	const v = reimage(['verify', '--bundle', web.url('/good/'), '--trust', `${key}.pub`]);
	assert.is(v.status, 0, describe(v));
	assert.match(v.stdout, /bundle http:\/\/127\.0\.0\.1:\d+\/good\/ is valid: .* signed by trusted key/);
	const dev = attachLoop(freshOldDisk());
	try {
		const plan = reimage(['plan', '--bundle', web.url('/good/'), '--target', dev, '--trust', `${key}.pub`]);
		assert.is(plan.status, 0, describe(plan));
		// The report goes to a test endpoint too (--report-url).
		const endpoint = await startEndpoint<{ outcome: string }>();
		const got = endpoint.got;
		const reportUrl = endpoint.url();
		const r = await reimageAsync(BIN, [
			'run',
			'--bundle',
			web.url('/good/manifest.json'),
			'--target',
			dev,
			'--trust',
			`${key}.pub`,
			'--yes',
			'--json',
			'--report-url',
			reportUrl,
		]);
		await endpoint.stop();
		assert.is(r.status, 0, describe(r));
		assert.is(got.length, 1, 'the report arrived once');
		assert.is(got[0]?.outcome, 'success');
		const report = JSON.parse(r.stdout) as { outcome: string; entries: { outcome: string }[] };
		assert.is(report.outcome, 'success');
		assert.ok(report.entries.length > 5 && report.entries.every((e) => e.outcome !== 'failed'));
		assert.match(r.stderr, /bundle signature by trusted key [0-9a-f]{16} verified/);
		assert.match(r.stderr, /the bundle from http:\/\/.* is in RAM: 3 files/);
	} finally {
		detachLoop(dev);
	}
	assert.equal(
		fs.readdirSync(process.env.REIMAGE_RUNDIR ?? '/run/reimage').filter((f) => /^bundle-[A-Za-z0-9]{6}$/.test(f)),
		[],
		'the RAM copy is gone',
	);
});

t('a bad signature over HTTP: refused (exit 3) before the image is asked for; the target is untouched', async () => {
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const r = await reimageAsync(BIN, ['run', '--bundle', proxy.url('/altered/'), '--target', dev, '--trust', `${key}.pub`, '--yes']);
		assert.is(r.status, 3, describe(r));
		assert.match(r.stderr, /signature by key [0-9a-f]{16} in manifest\.json\.sig does not match manifest\.json/);
		assert.is(proxy.served.get(image), undefined, 'not one byte of the image was fetched');
		assert.is(await sha256(dev), before);
	} finally {
		detachLoop(dev);
	}
});

t('corrupt image bytes on the server: refused (exit 3) naming the file; the target is untouched', async () => {
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const r = reimage(['run', '--bundle', web.url('/corrupt/'), '--target', dev, '--trust', `${key}.pub`, '--yes']);
		assert.is(r.status, 3, describe(r));
		assert.match(r.stderr, /image\.raw\.zst downloaded from http:\/\/.* but the manifest says .*corrupt or altered/);
		assert.is(await sha256(dev), before);
	} finally {
		detachLoop(dev);
	}
});

t('the initramfs flow with rd.reimage.bundle=https://…: the baked site CA (ca.pem) is trusted; without it, exit 9 and a reboot', () => {
	const RUNDIR = process.env.REIMAGE_RUNDIR || '/run/reimage';
	const run = (withCa: boolean) => {
		const d = tmpDir('reimage-boot-');
		const cfg = path.join(d, 'config');
		fs.mkdirSync(cfg);
		fs.copyFileSync(`${key}.pub`, path.join(cfg, 'fleet.pub'));
		if (withCa) fs.copyFileSync(tls.ca, path.join(cfg, 'ca.pem'));
		fs.writeFileSync(
			path.join(d, 'cmdline'),
			`rd.reimage rd.reimage.bundle=https://127.0.0.1:${web.tlsPort}/good/ rd.reimage.target=serial:NO-SUCH-DISK-${process.pid}\n`,
		);
		return reimage(['boot', '--cmdline', path.join(d, 'cmdline'), '--config', cfg], { env: { ...process.env, REIMAGE_RUNDIR: RUNDIR } });
	};
	const ok = run(true);
	assert.is(ok.status, 4, describe(ok));
	assert.match(ok.stderr, /copy the bundle from https:\/\/127\.0\.0\.1:\d+\/good\/ into RAM/);
	assert.match(ok.stderr, /bundle signature by trusted key [0-9a-f]{16} verified/);
	assert.match(ok.stderr, /no disk matches the target selector serial:NO-SUCH-DISK/);
	const no = run(false);
	assert.is(no.status, 9, describe(no));
	assert.match(no.stderr, /TLS certificate of 127\.0\.0\.1:\d+ is not trusted/);
	assert.match(no.stderr, /next: reboot/);
	assert.equal(
		fs
			.readFileSync('/proc/self/mounts', 'utf8')
			.split('\n')
			.filter((l) => l.includes(`${RUNDIR}/`)),
		[],
		'nothing left mounted',
	);
});

t(
	'a private store (HTTP basic auth on a real nginx): the initramfs sends the credentials baked next to its policy (auth), run sends --auth-file; without them exit 9 naming the 401',
	() => {
		const RUNDIR = process.env.REIMAGE_RUNDIR || '/run/reimage';
		const creds = path.join(tmpDir('reimage-auth-'), 'auth');
		fs.writeFileSync(creds, 'basic fleet:s3cret\n', { mode: 0o600 });
		const boot = (baked: boolean) => {
			const d = tmpDir('reimage-boot-');
			const cfg = path.join(d, 'config');
			fs.mkdirSync(cfg);
			fs.copyFileSync(`${key}.pub`, path.join(cfg, 'fleet.pub'));
			if (baked) fs.copyFileSync(creds, path.join(cfg, 'auth'));
			fs.writeFileSync(
				path.join(d, 'cmdline'),
				`rd.reimage rd.reimage.bundle=${web.url('/private/good/')} rd.reimage.target=serial:NO-SUCH-DISK-${process.pid}\n`,
			);
			return reimage(['boot', '--cmdline', path.join(d, 'cmdline'), '--config', cfg], { env: { ...process.env, REIMAGE_RUNDIR: RUNDIR } });
		};
		const ok = boot(true);
		assert.is(ok.status, 4, describe(ok));
		assert.match(ok.stderr, /bundle signature by trusted key [0-9a-f]{16} verified/);
		assert.match(ok.stderr, /no disk matches the target selector serial:NO-SUCH-DISK/);
		const no = boot(false);
		assert.is(no.status, 9, describe(no));
		assert.match(no.stderr, /401/);
		const plan = (...extra: string[]) => reimage(['verify', '--bundle', web.url('/private/good/'), '--trust', `${key}.pub`, ...extra]);
		assert.is(plan('--auth-file', creds).status, 0, describe(plan('--auth-file', creds)));
		const refused = plan();
		assert.is(refused.status, 9, describe(refused));
		assert.match(refused.stderr, /401/);
	},
);

t.run();
