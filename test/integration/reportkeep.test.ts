// No outcome is lost when the report endpoint is down: a run refused before
// writing, or one that failed after writing, keeps its report on the bundle's
// medium (reimage-outbox/ beside the bundle, 0700, the report 0600), never on
// the target; the next run sends it first, with the endpoint's credentials,
// then its own, and removes it (FAULTS 330-332).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Endpoint, startEndpoint } from '../helpers/endpoint.ts';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { copyBundle, frozenDisk, sigtermAt } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, mount, partNode, sha256, tmpDir, umount } from '../helpers/sys.ts';
import { reimageAsync } from '../helpers/web.ts';
import { BIN } from '../helpers/reimage.ts';

const t = suite('reports kept on the bundle medium');
type Doc = { outcome: string; exitCode: number; written: boolean; notes: string[] };
let endpoint: Endpoint<Doc>;
let url = '';
let port = 0;
let authFile = '';

t.before(async () => {
	endpoint = await startEndpoint<Doc>(204);
	port = endpoint.port;
	url = endpoint.url();
	authFile = path.join(tmpDir('reimage-auth-'), 'auth');
	fs.writeFileSync(authFile, 'bearer fleet-t0ken\n', { mode: 0o600 });
});
t.after(() => endpoint.stop());

// down: the endpoint unreachable (its port closed) for the length of FN.
async function down<T>(fn: () => Promise<T>): Promise<T> {
	await endpoint.stop();
	try {
		return await fn();
	} finally {
		endpoint = await startEndpoint<Doc>(204, port);
	}
}

// kept: the reports in BUNDLE's outbox, by name, after checking the modes (dir 0700, files 0600).
function kept(bundle: string): { name: string; doc: Doc; url: string }[] {
	const box = path.join(bundle, 'reimage-outbox');
	assert.is(fs.statSync(box).mode & 0o777, 0o700, 'outbox 0700');
	const names = fs.readdirSync(box).sort();
	for (const n of names) assert.is(fs.statSync(path.join(box, n)).mode & 0o777, 0o600, `${n} 0600`);
	return names
		.filter((n) => n.endsWith('.json'))
		.map((n) => ({
			name: n,
			doc: JSON.parse(fs.readFileSync(path.join(box, n), 'utf8')) as Doc,
			url: fs.readFileSync(path.join(box, n.replace(/\.json$/, '.url')), 'utf8').trim(),
		}));
}

const refusedRun = (bundle: string, dev: string) => [
	'run',
	'--bundle',
	bundle,
	'--target',
	dev,
	'--retain',
	fixtures().list,
	'--yes',
	'--compatible',
	'another-device',
	'--json',
	'--report-url',
	url,
	'--auth-file',
	authFile,
];

t(
	'refused before writing, endpoint down: kept beside the bundle, target untouched; the next run sends it first (with the token) and removes it',
	async () => {
		const bundle = copyBundle('zstd');
		const dev = attachLoop(freshOldDisk());
		try {
			const before = await sha256(dev);
			const r = await down(() => reimageAsync(BIN, refusedRun(bundle, dev)));
			assert.is(r.status, 3, describe(r));
			assert.is(await sha256(dev), before, 'target byte-identical');
			assert.match(
				r.stderr,
				/the report could not be sent to http:\/\/127\.0\.0\.1:\d+\/report: kept on the bundle's medium as .*reimage-outbox\/[^ ]+\.json; the next reimage run sends it first/,
			);
			const printed = JSON.parse(r.stdout) as Doc;
			const box = kept(bundle);
			assert.is(box.length, 1);
			const k = box[0]!;
			assert.is(k.url, url);
			// The kept file is the report document; the printed one adds the line saying where it is kept.
			assert.match(printed.notes.at(-1) ?? '', /kept as .*reimage-outbox\/.*\.json, sent by the next reimage run/);
			assert.equal({ ...printed, notes: printed.notes.slice(0, -1) }, k.doc);
			assert.equal([k.doc.outcome, k.doc.exitCode, k.doc.written], ['refused', 3, false]);
			assert.not.match(fs.readFileSync(path.join(bundle, 'reimage-outbox', k.name), 'utf8'), /fleet-t0ken/);

			endpoint.got = [];
			endpoint.auth = [];
			const again = await reimageAsync(BIN, refusedRun(bundle, dev));
			assert.is(again.status, 3, describe(again));
			assert.is(endpoint.got.length, 2, 'the kept report, then this run');
			assert.equal(endpoint.got[0], k.doc, 'the kept one first');
			assert.equal(endpoint.got[1], JSON.parse(again.stdout));
			assert.equal(endpoint.auth, ['Bearer fleet-t0ken', 'Bearer fleet-t0ken']);
			assert.equal(fs.readdirSync(path.join(bundle, 'reimage-outbox')), [], 'removed once taken');
			assert.is(await sha256(dev), before, 'target byte-identical');
		} finally {
			detachLoop(dev);
		}
	},
);

t('failed after writing (SIGTERM past the point of no return: 10), endpoint down: the report is kept on the bundle medium', async () => {
	const bundle = copyBundle('zstd');
	// The disk frozen: the write waits until the run has taken the signal, which so lands before the run can end.
	const disk = frozenDisk(freshOldDisk());
	const dev = attachLoop(disk.path);
	try {
		const args = ['run', '--bundle', bundle, '--target', dev, '--retain', fixtures().list, '--yes', '--report-url', url];
		const r = await down(() => sigtermAt(args, /point of no return/, disk));
		assert.ok(r.acted);
		assert.ok((r.status ?? 0) >= 10, r.stderr);
		assert.match(r.stderr, /kept on the bundle's medium as .*reimage-outbox\/[^ ]+\.json/);
		const box = kept(bundle);
		assert.is(box.length, 1);
		assert.equal([box[0]!.doc.outcome, box[0]!.doc.exitCode, box[0]!.doc.written], ['failed', r.status, true]);
	} finally {
		detachLoop(dev);
		disk.release();
	}
});

t('a bundle directory on the target disk is no place for a kept report: refused, nothing written there, and the log says why', async () => {
	const dev = attachLoop(freshOldDisk());
	let mnt = '';
	try {
		mnt = mount(partNode(dev, 2), { rw: true });
		const bundle = path.join(mnt, 'bundle');
		fs.mkdirSync(bundle);
		fs.copyFileSync(path.join(copyBundle('zstd'), 'manifest.json'), path.join(bundle, 'manifest.json'));
		const r = await down(() => reimageAsync(BIN, refusedRun(bundle, dev)));
		assert.ok(r.status !== null && r.status > 0 && r.status < 10, describe(r));
		assert.match(r.stderr, /the bundle directory .*bundle is on the target disk: a report the endpoint does not take is not kept there/);
		assert.match(r.stderr, /the report could not be sent to http:\/\/127\.0\.0\.1:\d+\/report and is kept nowhere/);
		assert.equal(fs.readdirSync(bundle), ['manifest.json'], 'nothing written beside the bundle on the target');
		assert.match((JSON.parse(r.stdout) as Doc).notes.at(-1) ?? '', /could not be kept/);
	} finally {
		if (mnt) umount(mnt);
		detachLoop(dev);
	}
});

t.run();
