// A report the endpoint did not take is kept in the new system with its
// sender and an enabled oneshot unit; one it took leaves nothing behind.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Deliver, OUTBOX_DIR, SENDER, UNIT } from '../../../src/stages/outbox.ts';
import { deliver } from '../../../src/stages/outcome.ts';
import { createLog } from '../../../src/util/log.ts';

const root = () => fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-outbox-'));

test('not taken: the report, its URL, the CA, the sender and the enabled unit in the new root', async () => {
	const r = root();
	const ca = path.join(r, '..', `${path.basename(r)}-ca.pem`);
	fs.writeFileSync(ca, 'PEM');
	const lines: string[] = [];
	const d: Deliver = { url: 'https://fleet.example/r', send: async () => false, ca, auth: 'Bearer s3cret' };
	await deliver(d, { outcome: 'success' }, createLog({ write: (l) => void lines.push(l) }), r);
	assert.ok(d.tried);
	const box = path.join(r, OUTBOX_DIR);
	const json = fs.readdirSync(box).filter((f) => f.endsWith('.json'));
	assert.is(json.length, 1);
	const id = json[0]!.slice(0, -'.json'.length);
	assert.equal(JSON.parse(fs.readFileSync(path.join(box, `${id}.json`), 'utf8')), { outcome: 'success' });
	assert.is(fs.readFileSync(path.join(box, `${id}.url`), 'utf8'), 'https://fleet.example/r\n');
	assert.is(fs.statSync(path.join(box, `${id}.json`)).mode & 0o777, 0o600);
	// The credentials: a header file for curl -H @file, root-only, in neither the report nor the unit.
	assert.is(fs.readFileSync(path.join(box, `${id}.auth`), 'utf8'), 'Authorization: Bearer s3cret\n');
	assert.is(fs.statSync(path.join(box, `${id}.auth`)).mode & 0o777, 0o600);
	assert.not.match(fs.readFileSync(path.join(box, `${id}.json`), 'utf8'), /s3cret/);
	assert.not.match(fs.readFileSync(path.join(r, 'etc/systemd/system', UNIT), 'utf8'), /s3cret|auth/);
	assert.match(fs.readFileSync(path.join(r, SENDER), 'utf8'), /-H "@\$id\.auth"/);
	assert.is(fs.readFileSync(path.join(box, 'ca.pem'), 'utf8'), 'PEM');
	assert.is(fs.statSync(path.join(r, SENDER)).mode & 0o777, 0o755);
	assert.match(fs.readFileSync(path.join(r, 'etc/systemd/system', UNIT), 'utf8'), /ExecStart=\/bin\/sh \/usr\/lib\/reimage\/send-reports/);
	assert.is(fs.readlinkSync(path.join(r, 'etc/systemd/system/multi-user.target.wants', UNIT)), `/etc/systemd/system/${UNIT}`);
	assert.match(
		lines.join(''),
		/the report is kept in the new system as \/var\/lib\/reimage\/outbox\/.*\.json: reimage-report\.service \(curl\) sends it to https:\/\/fleet\.example\/r at the next boot/,
	);
});

test('taken (2xx): nothing is written into the new root', async () => {
	const r = root();
	const sent: unknown[] = [];
	await deliver(
		{ url: 'http://x/r', send: async (doc) => (sent.push(doc), true) },
		{ outcome: 'success' },
		createLog({ write: () => {} }),
		r,
	);
	assert.equal(sent, [{ outcome: 'success' }]);
	assert.equal(fs.readdirSync(r), []);
});

test('an outbox path the image made a symlink out of the root: confined, a warning, never a failure', async () => {
	const r = root();
	const outside = root();
	fs.mkdirSync(path.join(r, 'var/lib'), { recursive: true });
	fs.symlinkSync(outside, path.join(r, 'var/lib/reimage'));
	await deliver({ url: 'http://x/r', send: async () => false }, { outcome: 'success' }, createLog({ write: () => {} }), r);
	assert.equal(fs.readdirSync(outside), [], 'nothing written outside the root');
});

test.run();
