// Happy path: pack new.img (zstd), reimage a copy of old.img with kiosk.list,
// then inspect the new system on the device.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { reimage, requireBin, sharedBundle } from '../helpers/reimage.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	exec,
	getAcl,
	getCap,
	getXattr,
	mount,
	partNode,
	partNumberByName,
	partxUpdate,
	sfdiskJson,
	umount,
} from '../helpers/sys.ts';
import type { Result, SfdiskTable } from '../helpers/sys.ts';

interface State {
	error?: string;
	result?: Result;
	dev?: string;
	oldDev?: string;
	table?: SfdiskTable;
	leftMounted?: string;
	fsck?: string[];
	root?: string;
	data?: string;
	oldRoot?: string;
	oldData?: string;
}

const s: State = {};
const t = suite('run (zstd): old kiosk disk -> new image, keeping kiosk.list');

// uvu swallows errors thrown by before hooks: keep them and fail every test instead.
t.before(() => {
	try {
		requireBin();
		const fx = fixtures();
		const bundle = sharedBundle('zstd');
		const disk = freshOldDisk();
		s.dev = attachLoop(disk);
		s.result = reimage(['run', '--bundle', bundle, '--target', s.dev, '--retain', fx.list, '--yes']);
		if (s.result.status !== 0) return;
		partxUpdate(s.dev);
		s.table = sfdiskJson(s.dev);
		const mounted = s.table.partitions.map((p) => p.node).filter((n) => exec('findmnt', ['-n', '-S', n]).status === 0);
		s.leftMounted = mounted.join(' ');
		const rootNode = partNode(s.dev, partNumberByName(s.table, 'root'));
		const dataNode = partNode(s.dev, partNumberByName(s.table, 'data'));
		s.fsck = [rootNode, dataNode]
			.map((n) => ({ n, r: exec('fsck.ext4', ['-fn', n]) }))
			.filter(({ r }) => r.status !== 0)
			.map(({ n, r }) => `${n}: ${describe(r)}`);
		s.root = mount(rootNode);
		s.data = mount(dataNode);
		s.oldDev = attachLoop(fx.oldImg, { readOnly: true });
		s.oldRoot = mount(partNode(s.oldDev, 1));
		s.oldData = mount(partNode(s.oldDev, 2));
	} catch (e) {
		s.error = e instanceof Error ? e.message : String(e);
	}
});

t.after(() => {
	for (const m of [s.root, s.data, s.oldRoot, s.oldData]) if (m) umount(m);
	for (const d of [s.dev, s.oldDev]) if (d) detachLoop(d);
});

function ok(): { root: string; data: string; oldRoot: string; oldData: string; dev: string; table: SfdiskTable } {
	if (s.error) throw new Error(`setup failed: ${s.error}`);
	if (!s.result || s.result.status !== 0) throw new Error(`reimage run failed: ${s.result ? describe(s.result) : '?'}`);
	if (!s.root || !s.data || !s.oldRoot || !s.oldData || !s.dev || !s.table) throw new Error('setup incomplete');
	return { root: s.root, data: s.data, oldRoot: s.oldRoot, oldData: s.oldData, dev: s.dev, table: s.table };
}

function readSectors(dev: string, lba: number, count: number): Buffer {
	const fd = fs.openSync(dev, 'r');
	try {
		const b = Buffer.alloc(512 * count);
		fs.readSync(fd, b, 0, b.length, lba * 512);
		return b;
	} finally {
		fs.closeSync(fd);
	}
}

const at = (root: string, p: string): string => path.join(root, p);
const mode = (st: fs.Stats): string => (st.mode & 0o7777).toString(8).padStart(4, '0');

/** Same bytes, mode and owner-by-name as in the old system. */
function sameFile(newP: string, oldP: string, want: { mode: string; uid: number; gid: number }): void {
	assert.ok(fs.existsSync(newP), `${newP} missing`);
	assert.ok(fs.readFileSync(newP).equals(fs.readFileSync(oldP)), `${newP}: bytes differ from the old system`);
	const st = fs.lstatSync(newP);
	assert.is(mode(st), want.mode, `${newP} mode`);
	assert.is(st.uid, want.uid, `${newP} uid`);
	assert.is(st.gid, want.gid, `${newP} gid`);
}

t('run exits 0', () => {
	if (s.error) throw new Error(`setup failed: ${s.error}`);
	assert.ok(s.result, 'no result');
	assert.is(s.result.status, 0, describe(s.result));
});

t('nothing on the target is left mounted', () => {
	ok();
	assert.is(s.leftMounted, '', `still mounted: ${s.leftMounted}`);
});

t('file systems on the target are clean (fsck -fn)', () => {
	ok();
	assert.equal(s.fsck, [], (s.fsck ?? []).join('\n'));
});

t("partition table is new.img's", () => {
	const { table } = ok();
	const want = sfdiskJson(fixtures().newImg);
	assert.is(table.label, 'gpt');
	assert.is(table.id, want.id, 'disk GUID');
	assert.is(table.partitions.length, want.partitions.length, 'partition count');
	want.partitions.forEach((w, i) => {
		const g = table.partitions[i]!;
		assert.is(g.start, w.start, `partition ${i + 1} start`);
		assert.is(g.uuid, w.uuid, `partition ${i + 1} uuid`);
		assert.is(g.type, w.type, `partition ${i + 1} type`);
		assert.is(g.name, w.name, `partition ${i + 1} name`);
		// The last partition may be grown to fill a larger disk; the others may not change.
		if (i < want.partitions.length - 1) assert.is(g.size, w.size, `partition ${i + 1} size`);
		else assert.ok(g.size >= w.size, `partition ${i + 1} shrank: ${g.size} < ${w.size}`);
	});
});

t('backup GPT is at the real end of the device', () => {
	const { dev, table } = ok();
	const sectors = Number(exec('blockdev', ['--getsz', dev]).stdout.trim());
	// Primary header (LBA 1) names the backup header's LBA at byte 32; it must be the last sector.
	const primary = readSectors(dev, 1, 1);
	assert.is(primary.subarray(0, 8).toString('latin1'), 'EFI PART', 'no primary GPT header');
	assert.is(Number(primary.readBigUInt64LE(32)), sectors - 1, 'primary header: backup LBA is not the last sector');
	const backup = readSectors(dev, sectors - 1, 1);
	assert.is(backup.subarray(0, 8).toString('latin1'), 'EFI PART', 'no backup GPT header in the last sector');
	assert.ok((table.lastlba ?? 0) > sfdiskJson(fixtures().newImg).lastlba!, `last usable LBA ${table.lastlba} not moved to the end`);
	const v = exec('sgdisk', ['-v', dev]);
	assert.is(v.status, 0, describe(v));
	assert.match(v.stdout, /No problems found/, describe(v));
	const f = exec('sfdisk', ['--verify', dev]);
	assert.is(f.status, 0, describe(f));
});

t('the new system is the new image', () => {
	const { root, data } = ok();
	assert.match(fs.readFileSync(at(root, 'etc/os-release'), 'utf8'), /^NEW_IMAGE=1$/m);
	assert.match(fs.readFileSync(at(root, 'etc/passwd'), 'utf8'), /^kiosk:x:1002:1002:/m);
	assert.match(fs.readFileSync(at(root, 'etc/ssh/sshd_config'), 'utf8'), /new sshd_config/, 'glob ssh_host_* overreached');
	assert.ok(fs.lstatSync(at(root, 'var/run')).isSymbolicLink(), '/var/run no longer a symlink');
	assert.ok(fs.existsSync(at(data, 'README-new')), 'data partition is not the new one');
	assert.not.ok(fs.existsSync(at(data, 'media')), 'old /kiosk/media leaked into the new data partition');
});

t('machine-id and hostname are the old ones', () => {
	const { root, oldRoot } = ok();
	for (const f of ['etc/machine-id', 'etc/hostname']) {
		assert.is(fs.readFileSync(at(root, f), 'utf8'), fs.readFileSync(at(oldRoot, f), 'utf8'), f);
	}
	assert.is(fs.readFileSync(at(root, 'etc/hostname'), 'utf8'), 'kiosk-old-42\n');
	assert.is(mode(fs.statSync(at(root, 'etc/machine-id'))), '0444');
});

t('ssh host keys: bytes, mode, owner', () => {
	const { root, oldRoot } = ok();
	const k = 'etc/ssh/ssh_host_ed25519_key';
	sameFile(at(root, k), at(oldRoot, k), { mode: '0600', uid: 0, gid: 0 });
	sameFile(at(root, `${k}.pub`), at(oldRoot, `${k}.pub`), { mode: '0644', uid: 0, gid: 0 });
});

t('ssh host key keeps its mtime', () => {
	const { root, oldRoot } = ok();
	const k = 'etc/ssh/ssh_host_ed25519_key';
	assert.is(fs.lstatSync(at(root, k)).mtimeMs, fs.lstatSync(at(oldRoot, k)).mtimeMs);
});

t('site.key: bytes, mode, group mapped by name (ssl-cert 1100 -> 1200)', () => {
	const { root, oldRoot } = ok();
	const k = 'etc/ssl/private/site.key';
	sameFile(at(root, k), at(oldRoot, k), { mode: '0640', uid: 0, gid: 1200 });
	const d = fs.lstatSync(at(root, 'etc/ssl/private'));
	assert.is(mode(d), '0710', '/etc/ssl/private mode');
	assert.is(d.gid, 1200, '/etc/ssl/private gid');
});

t('site.key: user xattr', () => {
	const { root } = ok();
	assert.is(getXattr(at(root, 'etc/ssl/private/site.key'), 'user.reimage.test')?.toString(), 'hello');
});

t('site.key: security.* xattr', () => {
	const { root } = ok();
	assert.is(getXattr(at(root, 'etc/ssl/private/site.key'), 'security.reimage')?.toString(), 'secret');
});

t('site.key: POSIX ACL present', () => {
	const { root } = ok();
	const acl = getAcl(at(root, 'etc/ssl/private/site.key'));
	assert.ok(
		acl.some((l) => /^user:\d+:r--/.test(l)),
		`no named-user ACL entry: ${acl.join(', ')}`,
	);
	assert.ok(acl.includes('mask::r--'), `ACL mask: ${acl.join(', ')}`);
});

t('site.key: ACL user entry mapped by name (kiosk 1001 -> 1002)', () => {
	const { root } = ok();
	const acl = getAcl(at(root, 'etc/ssl/private/site.key'));
	assert.ok(
		acl.some((l) => l.startsWith('user:1002:r--')),
		`ACL: ${acl.join(', ')}`,
	);
});

t('file capability (security.capability) on /usr/local/bin/tool', () => {
	const { root } = ok();
	const cap = getCap(at(root, 'usr/local/bin/tool'));
	assert.match(cap, /cap_net_bind_service[=+]ep/, `getcap: ${JSON.stringify(cap)} (chown after setting the xattr drops it)`);
});

t('NetworkManager connection: bytes, mode 0600', () => {
	const { root, oldRoot } = ok();
	const f = 'etc/NetworkManager/system-connections/wired.nmconnection';
	sameFile(at(root, f), at(oldRoot, f), { mode: '0600', uid: 0, gid: 0 });
});

t('/srv/share: setgid 2775, owned by kiosk (now 1002), recursive', () => {
	const { root, oldRoot } = ok();
	const d = fs.lstatSync(at(root, 'srv/share'));
	assert.ok(d.isDirectory());
	assert.is(mode(d), '2775', '/srv/share mode');
	assert.is(d.uid, 1002, '/srv/share uid');
	assert.is(d.gid, 1002, '/srv/share gid');
	sameFile(at(root, 'srv/share/readme.txt'), at(oldRoot, 'srv/share/readme.txt'), { mode: '0664', uid: 1002, gid: 1002 });
	const sub = fs.lstatSync(at(root, 'srv/share/sub'));
	assert.is(mode(sub), '2775', '/srv/share/sub mode');
	sameFile(at(root, 'srv/share/sub/nested.txt'), at(oldRoot, 'srv/share/sub/nested.txt'), {
		mode: '0600',
		uid: 1002,
		gid: 1002,
	});
});

t('/srv/share: names with newline, spaces and a non-UTF-8 byte', () => {
	const { root, oldRoot } = ok();
	const names = (dir: string): string[] =>
		fs
			.readdirSync(dir, { encoding: 'buffer' })
			.map((b) => b.toString('hex'))
			.sort();
	const want = [
		Buffer.from('name with\nnewline'),
		Buffer.from('name with spaces'),
		Buffer.concat([Buffer.from('bad-'), Buffer.from([0xff]), Buffer.from('-name')]),
	];
	const got = names(at(root, 'srv/share'));
	assert.equal(got, names(at(oldRoot, 'srv/share')), 'directory listing differs from the old one');
	for (const w of want) {
		assert.ok(got.includes(w.toString('hex')), `missing ${JSON.stringify(w.toString('latin1'))}`);
		const np = Buffer.concat([Buffer.from(at(root, 'srv/share') + '/'), w]);
		const op = Buffer.concat([Buffer.from(at(oldRoot, 'srv/share') + '/'), w]);
		assert.ok(fs.readFileSync(np).equals(fs.readFileSync(op)), `bytes of ${JSON.stringify(w.toString('latin1'))}`);
		assert.is(fs.lstatSync(np).uid, 1002);
	}
});

t('suid-tool keeps mode 4755', () => {
	const { root, oldRoot } = ok();
	const f = 'usr/local/bin/suid-tool';
	sameFile(at(root, f), at(oldRoot, f), { mode: '4755', uid: 0, gid: 0 });
});

t('/etc/kiosk-link is a symlink to /kiosk/config', () => {
	const { root } = ok();
	const p = at(root, 'etc/kiosk-link');
	assert.ok(fs.lstatSync(p).isSymbolicLink(), 'not a symlink');
	assert.is(fs.readlinkSync(p), '/kiosk/config');
});

t('/kiosk/config on the data partition: bytes, 0640, kiosk (1002), xattr', () => {
	const { data, oldData } = ok();
	sameFile(at(data, 'config'), at(oldData, 'config'), { mode: '0640', uid: 1002, gid: 1002 });
	assert.is(getXattr(at(data, 'config'), 'user.kiosk')?.toString(), '1');
});

interface Report {
	outcome?: string;
	entries?: Array<{ path?: string; outcome?: string }>;
}

function report(root: string): Report {
	return JSON.parse(fs.readFileSync(at(root, 'var/log/reimage/report.json'), 'utf8')) as Report;
}

t('report.json: outcome success, optional entry reported missing; log written', () => {
	const { root } = ok();
	const r = report(root);
	assert.is(r.outcome, 'success');
	assert.ok(Array.isArray(r.entries), 'entries is not an array');
	const missing = (r.entries ?? []).filter((e) => (e.path ?? '').includes('/etc/does-not-exist'));
	assert.ok(missing.length > 0, 'no entry for ?/etc/does-not-exist');
	for (const e of missing) assert.is(e.outcome, 'missing-optional');
	assert.ok(fs.statSync(at(root, 'var/log/reimage/reimage.log')).size > 0, 'reimage.log is empty');
});

t('report.json: every other entry restored', () => {
	const { root } = ok();
	const bad = (report(root).entries ?? []).filter((e) => !(e.path ?? '').includes('/etc/does-not-exist') && e.outcome !== 'restored');
	assert.equal(bad, []);
});

t.run();
