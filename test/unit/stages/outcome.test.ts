// Every outcome leaves through deliver(): without a new system, a report the
// endpoint did not take is kept on the bundle's medium (reimage-outbox/, 0700,
// files 0600) and sent first by the next run, oldest first, removed once taken;
// with no medium it is kept nowhere and the report's notes say so. Once per run.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dirPlace } from '../../../src/retention/archive.ts';
import type { Deliver } from '../../../src/stages/outbox.ts';
import { deliver, localMedium, sendKept } from '../../../src/stages/outcome.ts';
import { createLog } from '../../../src/util/log.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-outcome-'));
const quiet = createLog({ write: () => {} });

test('refused, not taken: kept on the medium (0700 dir, 0600 files); the next run sends it first and removes it', async () => {
	const bundle = tmp();
	const box = path.join(bundle, 'reimage-outbox');
	const medium = await localMedium(bundle, '/nonexistent-target', quiet);
	assert.is(medium?.path, box);
	const report = { outcome: 'refused', notes: [] as string[] };
	const d: Deliver = { url: 'http://x/r', send: async () => false, ...(medium ? { medium } : {}) };
	await deliver(d, report, quiet);
	assert.is(fs.statSync(box).mode & 0o777, 0o700);
	const files = fs.readdirSync(box).sort();
	assert.is(files.length, 2);
	for (const f of files) assert.is(fs.statSync(path.join(box, f)).mode & 0o777, 0o600);
	assert.equal(JSON.parse(fs.readFileSync(path.join(box, files[0]!), 'utf8')), { outcome: 'refused', notes: [] });
	assert.match(
		report.notes[0] ?? '',
		/could not be sent to http:\/\/x\/r: kept as .*reimage-outbox\/.*\.json, sent by the next reimage run/,
	);
	await deliver(d, { outcome: 'again' }, quiet);
	assert.is(fs.readdirSync(box).length, 2, 'once per run');
	const got: [unknown, string | undefined][] = [];
	await sendKept({ ...d, tried: false, send: async (b, u) => (got.push([b, u]), true) }, quiet);
	assert.equal(got, [[{ outcome: 'refused', notes: [] }, 'http://x/r']]);
	assert.equal(fs.readdirSync(box), []);
});

test('two kept, the endpoint refuses the first: both stay, in order', async () => {
	const box = path.join(tmp(), 'reimage-outbox');
	const medium = dirPlace(box, true);
	for (const n of [1, 2]) await deliver({ url: 'http://x/r', send: async () => false, medium }, { n }, quiet);
	const sent: unknown[] = [];
	await sendKept({ url: 'http://x/r', send: async (b) => (sent.push(b), false), medium }, quiet);
	assert.equal(sent, [{ n: 1 }]);
	assert.is(fs.readdirSync(box).length, 4);
	await sendKept({ url: 'http://x/r', send: async (b) => (sent.push(b), true), medium }, quiet);
	assert.equal(sent.slice(1), [{ n: 1 }, { n: 2 }]);
});

test('no medium (a URL bundle) or an unwritable one: kept nowhere, and the log and the notes say why', async () => {
	const lines: string[] = [];
	const log = createLog({ write: (l) => void lines.push(l) });
	const report = { notes: [] as string[] };
	await deliver({ url: 'http://x/r', send: async () => false }, report, log);
	assert.match(lines.join(''), /could not be sent to http:\/\/x\/r and is kept nowhere: the bundle came from no writable medium/);
	assert.match(report.notes[0] ?? '', /could not be kept \(the bundle came from no writable medium/);
	const file = path.join(tmp(), 'f');
	fs.writeFileSync(file, '');
	const r2 = { notes: [] as string[] };
	await deliver({ url: 'http://x/r', send: async () => false, medium: dirPlace(path.join(file, 'reimage-outbox'), true) }, r2, log);
	assert.match(r2.notes[0] ?? '', /could not be kept \(the bundle's medium .* is not writable\)/);
	assert.is(await localMedium('https://h/b/', '/dev/null', quiet), undefined);
	assert.is(await localMedium('LABEL=usb:/b', '/dev/null', quiet), undefined);
});

test.run();
