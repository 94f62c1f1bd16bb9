// The confined I/O of retention/inroot.ts on a real (temporary) directory
// tree: mount points, reads with no final symlink followed, writes renamed
// over their name. Nothing outside the root may be touched.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mountPoint, readInRoot, writeInRoot } from '../../../src/retention/inroot.ts';
import { bpath } from '../../../src/util/bytes.ts';

// A root and, next to it, an "outside" directory holding a host file.
function tree() {
	const top = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-inroot-'));
	const root = path.join(top, 'root');
	const outside = path.join(top, 'outside');
	fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
	fs.mkdirSync(path.join(root, 'var/log'), { recursive: true });
	fs.mkdirSync(path.join(root, 'boot'), { recursive: true });
	fs.mkdirSync(outside);
	fs.writeFileSync(path.join(outside, 'host-file'), 'HOST\n');
	return { top, root, outside, done: () => fs.rmSync(top, { recursive: true, force: true }) };
}

test('a mount point through a symlink is refused, a missing one is made only inside the root', async () => {
	const t = tree();
	try {
		fs.symlinkSync(t.outside, path.join(t.root, 'boot/efi'));
		fs.symlinkSync('/../../outside', path.join(t.root, 'kiosk'));
		fs.writeFileSync(path.join(t.root, 'file'), '');
		const efi = await mountPoint(t.root, '/boot/efi', true);
		assert.ok('why' in efi && /\/boot\/efi is a symbolic link/.test(efi.why), JSON.stringify(efi));
		const below = await mountPoint(t.root, '/kiosk/data', true);
		assert.ok('why' in below && /\/kiosk is a symbolic link/.test(below.why), JSON.stringify(below));
		const notDir = await mountPoint(t.root, '/file', true);
		assert.ok('why' in notDir && /not a directory/.test(notDir.why));
		assert.equal(fs.readdirSync(t.outside), ['host-file']);
		const none = await mountPoint(t.root, '/srv/data', false);
		assert.ok('why' in none && /\/srv does not exist/.test(none.why));
		assert.not.ok(fs.existsSync(path.join(t.root, 'srv')));
		assert.equal(await mountPoint(t.root, '/srv/data', true), { host: path.join(t.root, 'srv/data') });
		assert.ok(fs.statSync(path.join(t.root, 'srv/data')).isDirectory());
		assert.equal(await mountPoint(t.root, '/', false), { host: t.root });
	} finally {
		t.done();
	}
});

test('a read never follows the final symlink', async () => {
	const t = tree();
	try {
		fs.symlinkSync(path.join(t.outside, 'host-file'), path.join(t.root, 'etc/passwd'));
		const r = await readInRoot(t.root, bpath('/etc/passwd'));
		assert.is(r.bytes, undefined);
		assert.match(r.why ?? '', /\/etc\/passwd is a symbolic link .* not followed/);
		fs.writeFileSync(path.join(t.root, 'etc/group'), 'root:x:0:\n');
		assert.is((await readInRoot(t.root, bpath('/etc/group'))).bytes?.toString(), 'root:x:0:\n');
		// A parent symlink resolves inside the root: /alt -> /../../outside is /outside in the root.
		fs.symlinkSync('/../../outside', path.join(t.root, 'alt'));
		assert.equal(await readInRoot(t.root, bpath('/alt/host-file')), {});
		assert.equal(await readInRoot(t.root, bpath('/missing/file')), {});
		assert.match((await readInRoot(t.root, bpath('/etc/group'), 3)).why ?? '', /over the 3-byte limit/);
	} finally {
		t.done();
	}
});

test('a write replaces a planted symlink and lands inside the root through linked parents', async () => {
	const t = tree();
	try {
		fs.mkdirSync(path.join(t.root, 'var/log/reimage'));
		fs.symlinkSync(path.join(t.outside, 'host-file'), path.join(t.root, 'var/log/reimage/report.json'));
		await writeInRoot(t.root, bpath('/var/log/reimage/report.json'), '{}\n', 0o644);
		assert.is(fs.readFileSync(path.join(t.outside, 'host-file'), 'utf8'), 'HOST\n');
		const st = fs.lstatSync(path.join(t.root, 'var/log/reimage/report.json'));
		assert.ok(st.isFile());
		assert.is(st.mode & 0o777, 0o644);
		// The directory itself a link out of the root: followed inside the root only.
		fs.symlinkSync(path.join(t.outside), path.join(t.root, 'var/log/other'));
		await writeInRoot(t.root, bpath('/var/log/other/reimage.log'), 'log\n', 0o644);
		assert.equal(fs.readdirSync(t.outside), ['host-file']);
		assert.is(fs.readFileSync(path.join(t.root, t.outside, 'reimage.log'), 'utf8'), 'log\n');
		assert.equal(fs.readdirSync(path.join(t.root, 'var/log/reimage')), ['report.json']);
	} finally {
		t.done();
	}
});

test('a write over a directory is one sentence naming the path', async () => {
	const t = tree();
	try {
		fs.mkdirSync(path.join(t.root, 'var/log/reimage/report.json'), { recursive: true });
		try {
			await writeInRoot(t.root, bpath('/var/log/reimage/report.json'), '{}', 0o644);
			assert.unreachable();
		} catch (e) {
			assert.match((e as Error).message, /could not write \/var\/log\/reimage\/report\.json in .*: /);
		}
		assert.equal(fs.readdirSync(path.join(t.root, 'var/log/reimage')), ['report.json']);
	} finally {
		t.done();
	}
});

test.run();
