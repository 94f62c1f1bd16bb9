// Outcomes are never lost: `run --report-url` against an endpoint that
// answers 500 keeps the report in the new system's outbox, and the sender it
// installs there (sh + curl) delivers it once the endpoint takes it; a bundle
// that cannot be fetched (exit 9) still sends its --json document. `run`
// takes the download limits of `fetch`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Endpoint, startEndpoint } from '../helpers/endpoint.ts';
import { closedPort } from '../helpers/ports.ts';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { BIN, pack, reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, mount, partNode, sha256, sh, tmpDir, umount } from '../helpers/sys.ts';
import { type Nginx, reimageAsync, startNginx } from '../helpers/web.ts';

const t = suite('report outbox');
let web: Nginx;
let key = '';
type Doc = { outcome: string; exitCode: number; command: string; written: boolean; phase: string };
let endpoint: Endpoint<Doc>;

t.before(async () => {
	const keys = tmpDir('reimage-keys-');
	key = path.join(keys, 'fleet');
	assert.is(reimage(['keygen', '--out', key]).status, 0);
	const root = tmpDir('reimage-www-');
	sh('cp', ['-a', pack('zstd', { sign: `${key}.key`, retain: fixtures().list }), path.join(root, 'good')]);
	web = await startNginx(root);
	endpoint = await startEndpoint<Doc>(500);
});
t.after(async () => {
	await endpoint.stop();
	await web.stop();
});

t('the endpoint answers 500: the report is kept in the new system, and its sender delivers it once the endpoint takes it', async () => {
	endpoint.answer = 500;
	endpoint.got = [];
	const dev = attachLoop(freshOldDisk());
	let root = '';
	try {
		const auth = path.join(tmpDir('reimage-auth-'), 'auth');
		fs.writeFileSync(auth, 'bearer outbox-t0ken\n', { mode: 0o600 });
		const args = [
			'run',
			'--bundle',
			web.url('/good/'),
			'--target',
			dev,
			'--trust',
			`${key}.pub`,
			'--yes',
			'--report-url',
			endpoint.url(),
			'--auth-file',
			auth,
		];
		const r = await reimageAsync(BIN, [...args, '--stall-timeout', '30', '--deadline', '600', '--retries', '2']);
		assert.is(r.status, 0, describe(r));
		assert.is(endpoint.got.length, 3, 'three tries');
		assert.equal(endpoint.auth, Array(3).fill('Bearer outbox-t0ken'), 'the run sends the credentials');
		assert.match(
			r.stderr,
			/the report is kept in the new system as \/var\/lib\/reimage\/outbox\/[^ ]+\.json: reimage-report\.service \(curl\) sends it/,
		);
		root = mount(partNode(dev, 1));
		const box = path.join(root, 'var/lib/reimage/outbox');
		const kept = fs.readdirSync(box).filter((f) => f.endsWith('.json'));
		assert.is(kept.length, 1);
		assert.is(JSON.parse(fs.readFileSync(path.join(box, kept[0]!), 'utf8')).outcome, 'success');
		// The endpoint's credentials, for the sender: a root-only header file, in neither the report nor the unit (FAULTS 333).
		const authKept = path.join(box, kept[0]!.replace(/\.json$/, '.auth'));
		assert.is(fs.readFileSync(authKept, 'utf8'), 'Authorization: Bearer outbox-t0ken\n');
		assert.is(fs.statSync(authKept).mode & 0o777, 0o600);
		assert.not.match(fs.readFileSync(path.join(box, kept[0]!), 'utf8'), /outbox-t0ken/);
		assert.not.match(fs.readFileSync(path.join(root, 'etc/systemd/system/reimage-report.service'), 'utf8'), /t0ken/);
		assert.is(
			fs.readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/reimage-report.service')),
			'/etc/systemd/system/reimage-report.service',
		);
		// The sender as the new system runs it at boot, on a copy of the outbox (the file system is mounted read-only here).
		const copy = tmpDir('reimage-outbox-');
		fs.cpSync(box, copy, { recursive: true });
		process.env.REIMAGE_OUTBOX = copy;
		const sender = path.join(root, 'usr/lib/reimage/send-reports');
		const refused = await reimageAsync('sh', [sender]);
		assert.is(refused.status, 1, describe(refused));
		assert.ok(fs.existsSync(path.join(copy, kept[0]!)), 'kept while the endpoint answers 500');
		endpoint.answer = 204;
		endpoint.got = [];
		endpoint.auth = [];
		const sent = await reimageAsync('sh', [sender]);
		assert.is(sent.status, 0, describe(sent));
		assert.is(endpoint.got[0]?.outcome, 'success');
		assert.equal(endpoint.auth, ['Bearer outbox-t0ken'], 'the sender sends the credentials');
		assert.equal(fs.readdirSync(copy), [], 'removed once taken');
	} finally {
		delete process.env.REIMAGE_OUTBOX;
		if (root) umount(root);
		detachLoop(dev);
	}
});

t('the bundle cannot be fetched (server down, exit 9): the --json document is printed and sent; the target is untouched', async () => {
	endpoint.answer = 204;
	endpoint.got = [];
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const down = `http://127.0.0.1:${closedPort()}/b/`;
		const r = await reimageAsync(BIN, [
			'run',
			'--bundle',
			down,
			'--target',
			dev,
			'--yes',
			'--no-retain',
			'--retries',
			'0',
			'--json',
			'--report-url',
			endpoint.url(),
		]);
		assert.is(r.status, 9, describe(r));
		const doc = JSON.parse(r.stdout) as Doc;
		assert.equal([doc.command, doc.outcome, doc.exitCode, doc.written], ['run', 'refused', 9, false]);
		assert.equal(endpoint.got, [doc], 'the same document reached the endpoint');
		assert.is(await sha256(dev), before);
		const bad = reimage(['run', '--bundle', down, '--target', dev, '--yes', '--stall-timeout', '0']);
		assert.is(bad.status, 2, describe(bad));
		assert.match(bad.stderr, /--stall-timeout 0 is not valid \(stallTimeout: .*\): give a whole number/);
	} finally {
		detachLoop(dev);
	}
});

t.run();
