// capture on a real temporary directory, extended attributes faked (reading
// them starts getfattr): a file that vanished or was replaced since the scan,
// and a failing xattr read, are refusals naming the entry; hard links are
// staged once; sparse files are staged without their holes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import { capture, type CaptureDeps } from '../../../src/retention/capture.ts';
import { emptyIds } from '../../../src/retention/ids.ts';
import { parseList } from '../../../src/retention/list.ts';
import { scan } from '../../../src/retention/scan.ts';

const dirs: string[] = [];
const tmp = () => {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-capture-'));
	dirs.push(d);
	return d;
};
const list = (...lines: string[]) => parseList(Buffer.from(lines.join('\n') + '\n'), 'test.list');
const noXattrs: CaptureDeps = { readXattrs: async () => [], readXattrsMany: async () => new Map() };

async function setup(files: Record<string, string>, ...lines: string[]) {
	const root = tmp();
	for (const [p, text] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
		fs.writeFileSync(path.join(root, p), text);
	}
	const s = await scan(root, list(...lines));
	return { root, stage: tmp(), found: s.found };
}

async function refusal(p: Promise<unknown>): Promise<ReimageError> {
	try {
		await p;
	} catch (e) {
		assert.instance(e, ReimageError, `not a ReimageError: ${String(e)}`);
		return e as ReimageError;
	}
	throw new Error('not refused');
}

test('a file that vanished between the scan and the capture -> refused, named with its line and ENOENT', async () => {
	const { root, stage, found } = await setup({ 'etc/a': 'a', 'etc/keep/b': 'b' }, '/etc/a', '/etc/keep');
	fs.rmSync(path.join(root, 'etc/keep/b'));
	const e = await refusal(capture(found, stage, emptyIds(), emptyIds(), noXattrs));
	assert.is(e.exit, 'retention');
	assert.match(e.message, /^retained entry \/etc\/keep\/b \(list line 2\) cannot be read: open failed with ENOENT; it vanished/);
});

test('a symlink that vanished -> refused naming readlink', async () => {
	const { root, stage } = await setup({ 'etc/a': 'a' }, '/etc/a');
	fs.symlinkSync('a', path.join(root, 'etc/l'));
	const s = await scan(root, list('/etc/a', '/etc/l'));
	fs.rmSync(path.join(root, 'etc/l'));
	const e = await refusal(capture(s.found, stage, emptyIds(), emptyIds(), noXattrs));
	assert.match(e.message, /\/etc\/l \(list line 2\) cannot be read: readlink failed with ENOENT/);
});

test('a file replaced by another since the scan -> refused', async () => {
	const { root, stage, found } = await setup({ 'etc/a': 'a' }, '/etc/a');
	fs.rmSync(path.join(root, 'etc/a'));
	fs.writeFileSync(path.join(root, 'etc/other'), 'x');
	fs.writeFileSync(path.join(root, 'etc/a'), 'new');
	const e = await refusal(capture(found, stage, emptyIds(), emptyIds(), noXattrs));
	assert.match(e.message, /\/etc\/a \(list line 1\) was replaced while it was being captured/);
});

test('extended attributes that cannot be read -> refused naming the entry (not an internal error)', async () => {
	const { stage, found } = await setup({ 'etc/a': 'a' }, '/etc/a');
	// The batch reports an error; asked one by one, the entry's own read fails.
	const failing: CaptureDeps = {
		readXattrs: async () => Promise.reject(new Error('getfattr /proc/1/fd/3: Input/output error')),
		readXattrsMany: async () => undefined,
	};
	const e = await refusal(capture(found, stage, emptyIds(), emptyIds(), failing));
	assert.is(e.exit, 'retention');
	assert.match(e.message, /\/etc\/a \(list line 1\) cannot be read: getfattr failed with getfattr \/proc\/1\/fd\/3: Input\/output error/);
});

test('hard links are staged once and captured as links to the first name', async () => {
	const { root, stage } = await setup({ 'keep/a': 'linked' }, '/keep');
	fs.linkSync(path.join(root, 'keep/a'), path.join(root, 'keep/b'));
	const s = await scan(root, list('/keep'));
	const c = await capture(s.found, stage, emptyIds(), emptyIds(), noXattrs);
	const b = c.find((x) => x.path === '/keep/b');
	const a = c.find((x) => x.path === '/keep/a');
	assert.is(b?.linkTo, '/keep/a');
	assert.is(b?.staged, a?.staged);
	assert.is(fs.readdirSync(stage).length, 1);
});

test('a sparse file is staged without its holes and reads back the same', async () => {
	const root = tmp();
	const fd = fs.openSync(path.join(root, 'sparse'), 'w');
	fs.writeSync(fd, Buffer.from('data'), 0, 4, 5 << 20);
	fs.closeSync(fd);
	fs.truncateSync(path.join(root, 'sparse'), 16 << 20);
	const s = await scan(root, list('/sparse'));
	const stage = tmp();
	const [c] = await capture(s.found, stage, emptyIds(), emptyIds(), noXattrs);
	assert.ok(c?.sparse && c.staged);
	const st = fs.statSync(c.staged);
	assert.is(st.size, 16 << 20);
	assert.ok(st.blocks * 512 <= 64 << 10, `staged ${st.blocks * 512} bytes`);
	assert.ok(fs.readFileSync(c.staged).equals(fs.readFileSync(path.join(root, 'sparse'))));
});

test.after(() => {
	for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test.run();
