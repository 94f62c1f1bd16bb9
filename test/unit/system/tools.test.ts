// The tool verbs on the fake runner: the exact argv each one runs, captured
// output parsed into typed values, and the exit a failure maps to (each
// verb's documented default, or the caller's).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ToolError } from '../../../src/errors.ts';
import type { RunOptions } from '../../../src/system/exec.ts';
import {
	blkidProbe,
	bootctlOneshot,
	compressFile,
	copySparse,
	dracutBuild,
	findMount,
	flushBuffers,
	getfattrDump,
	grubEnvList,
	grubEnvSet,
	grubEnvUnset,
	holdReadOnly,
	lsinitrdCopy,
	mkfsExtFrom,
	mkinitramfs,
	partxUpdate,
	qemuBoot,
	setfattrValue,
	sfdiskJson,
	unmkinitramfsCopy,
	writeTable,
} from '../../../src/system/tools.ts';
import { parseGetfattr, readXattrs } from '../../../src/retention/xattr.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';

test('the fake runner throws on a command it was not scripted for, naming the whole argv', async () => {
	const f = fakeSys().script('sfdisk --json /dev/loop9', { stdout: '' });
	const e = await sfdiskJson('/dev/loop8', f).catch((x: unknown) => x);
	assert.match((e as Error).message, /fake sys: command not scripted: sfdisk --json \/dev\/loop8/);
	assert.throws(() => f.stream('xz', ['-dc']), /stream not scripted: xz -dc/);
	f.done();
});

test('sfdiskJson: captured GPT and MBR tables parsed; "no table" (exit 1) is undefined', async () => {
	const f = fakeSys().captured('sfdisk-gpt').captured('sfdisk-mbr-ext');
	const gpt = await sfdiskJson('/dev/loop9', f);
	assert.is(gpt?.label, 'gpt');
	assert.is(gpt?.sectorsize, 512);
	assert.equal(
		gpt?.partitions.map((p) => [p.node, p.start, p.size, p.name]),
		[
			['/dev/loop9p1', 2048, 40960, 'root'],
			['/dev/loop9p2', 43008, 86016, 'data'],
		],
	);
	const mbr = await sfdiskJson('/dev/loop8', f);
	assert.equal(
		mbr?.partitions.map((p) => [p.node, p.type]),
		[
			['/dev/loop8p1', '83'],
			['/dev/loop8p2', '5'],
			['/dev/loop8p5', '83'],
			['/dev/loop8p6', '83'],
		],
	);
	const g = fakeSys().captured('sfdisk-none');
	assert.is(await sfdiskJson('/dev/loop9', g), undefined);
	f.done();
	g.done();
});

test('blkidProbe: captured export output as a record; nothing found (exit 2) is empty', async () => {
	const f = fakeSys().captured('blkid-gpt-p2').captured('blkid-none');
	const r = await blkidProbe('/dev/loop9p2', undefined, f);
	assert.is(r.LABEL, 'data');
	assert.is(r.TYPE, 'ext4');
	assert.is(r.PART_ENTRY_NAME, 'data');
	assert.equal(await blkidProbe('/dev/loop9', undefined, f), {});
	f.script('blkid -p -o export --offset 1048576 --size 4096 img', { stdout: 'TYPE=vfat\nLABEL=a\\ b\n' });
	assert.equal(await blkidProbe('img', { offset: 1048576, size: 4096 }, f), { TYPE: 'vfat', LABEL: 'a b' });
	f.done();
});

test('a failing verb maps to its documented default exit, or to the one the caller passes', async () => {
	const f = fakeSys().script('partx -u /dev/loop9', { exitCode: 1, stderr: 'partx: /dev/loop9: error adding partition 2' });
	f.script('blockdev --flushbufs /dev/loop9', { exitCode: 1 });
	let e = await partxUpdate('/dev/loop9', f).catch((x: unknown) => x);
	assert.instance(e, ToolError);
	assert.is((e as ToolError).exit, 'target');
	assert.is((e as ToolError).message, 'partx -u /dev/loop9: exit 1: partx: /dev/loop9: error adding partition 2');
	e = await partxUpdate('/dev/loop9', { run: f.run, exit: 'afterWrite' }).catch((x: unknown) => x);
	assert.is((e as ToolError).exit, 'afterWrite');
	e = await flushBuffers('/dev/loop9', f).catch((x: unknown) => x);
	assert.is((e as ToolError).exit, 'afterWrite');
	e = await flushBuffers('/dev/loop9', { run: f.run, exit: 'target' }).catch((x: unknown) => x);
	assert.is((e as ToolError).exit, 'target');
	f.done();
});

test('holdReadOnly: a writable device is made read-only and put back; one read-only before stays so', async () => {
	const f = fakeSys()
		.script('blockdev --getro /dev/loop9p1', { stdout: '0\n' })
		.script('blockdev --setro /dev/loop9p1', {})
		.script('blockdev --setrw /dev/loop9p1', {})
		.script('blockdev --getro /dev/loop9p2', { stdout: '1\n' });
	await (await holdReadOnly('/dev/loop9p1', f))();
	await (await holdReadOnly('/dev/loop9p2', f))();
	assert.equal(f.calls, [
		'blockdev --getro /dev/loop9p1',
		'blockdev --setro /dev/loop9p1',
		'blockdev --setrw /dev/loop9p1',
		'blockdev --getro /dev/loop9p2',
	]);
	f.done();
});

test('findMount: the captured findmnt line as fields', async () => {
	const f = fakeSys().captured('findmnt-grub');
	assert.equal(await findMount('/tmp/capture/mnt/grub', f), {
		fstype: 'ext4',
		source: '/dev/loop9p1',
		target: '/tmp/capture/mnt',
		uuid: '0b8c4a4e-2f0b-4e59-9a8e-3f7f3c1d2e01',
	});
	f.done();
});

test('getfattr: the captured dump (an ACL and a user attribute) parsed; a missing file is an error, not "no attributes"', async () => {
	const f = fakeSys().captured('getfattr-file').captured('getfattr-missing');
	const out = await getfattrDump(['/tmp/capture/mnt/f'], false, f);
	assert.equal(
		parseGetfattr(out.stdout).map((x) => x.name),
		['system.posix_acl_access', 'user.site'],
	);
	assert.equal(await readXattrs('/tmp/capture/mnt/f', false, f.run), parseGetfattr(out.stdout));
	assert.is(Buffer.from(parseGetfattr(out.stdout)[1]!.value, 'base64').toString(), 'kiosk-42');
	const e = await readXattrs('/tmp/capture/mnt/nothing', false, f.run).catch((x: unknown) => x);
	assert.match((e as Error).message, /getfattr \/tmp\/capture\/mnt\/nothing: getfattr: .*No such file or directory/);
	f.done();
});

test('boot verbs: the grubenv list and the systemd-boot one-shot (clearing tolerates "no variable")', async () => {
	const f = fakeSys().script('grub-editenv /boot/grub/grubenv list', { stdout: 'next_entry=reimage-armed\n' });
	f.script('bootctl --esp-path=/efi set-oneshot ', { exitCode: 1 });
	f.script('bootctl --esp-path=/efi set-oneshot x.conf', { exitCode: 1, stderr: 'Failed' });
	assert.is(await grubEnvList('/boot/grub/grubenv', f), 'next_entry=reimage-armed\n');
	await bootctlOneshot('/efi', '', f);
	const e = await bootctlOneshot('/efi', 'x.conf', f).catch((x: unknown) => x);
	assert.is((e as ToolError).exit, 'environment');
	f.done();
});

test('the argv of the verbs that build, pack and boot (what the old inline calls ran, byte for byte)', async () => {
	const f = fakeSys();
	const want = [
		'sh -c lsinitrd --file "$1" "$2" > "$3" sh usr/lib/reimage/reimage /tmp/i.img /tmp/copy',
		'unmkinitramfs /tmp/i.img /tmp/x',
		'sh -c cp "$(find "$1" -path "*/usr/lib/reimage/reimage" | head -n 1)" "$2" sh /tmp/x /tmp/copy',
		'mkinitramfs -d /tmp/conf -o /tmp/out.img 6.1.0',
		'dracut --force --kver 6.1.0 /tmp/out.img',
		'xz -T0 -6 -c /tmp/disk.img',
		'sfdisk -q /tmp/stick.img',
		'mkfs.ext4 -q -L STICK -d /tmp/tree -E offset=1048576 /tmp/stick.img 70M',
		'cp --sparse=always /tmp/a.img /tmp/b.img',
		'qemu-system-x86_64 -m 512',
		'grub-editenv /boot/grub/grubenv set next_entry=reimage-armed',
		'grub-editenv /boot/grub/grubenv unset next_entry',
		'setfattr -h -n user.a -v 0sMQ== /proc/1/fd/3',
	];
	for (const argv of want) f.script(argv);
	const seen: RunOptions[] = [];
	const run = f.run;
	f.run = (tool, args, opts) => (seen.push(opts ?? {}), run(tool, args, opts));
	await lsinitrdCopy('/tmp/i.img', 'usr/lib/reimage/reimage', '/tmp/copy', f);
	await unmkinitramfsCopy('/tmp/i.img', 'usr/lib/reimage/reimage', '/tmp/x', '/tmp/copy', f);
	await mkinitramfs('/tmp/conf', '/tmp/out.img', '6.1.0', { REIMAGE_BIN: 'b' }, f);
	await dracutBuild(['--force', '--kver', '6.1.0', '/tmp/out.img'], { dracutbasedir: '/tmp/base' }, f);
	await compressFile('xz', ['-T0', '-6'], '/tmp/disk.img', '/tmp/disk.img.xz', f);
	await writeTable('/tmp/stick.img', 'label: gpt\n', f);
	await mkfsExtFrom('/tmp/stick.img', 'STICK', '/tmp/tree', 1048576, 70, f);
	await copySparse('/tmp/a.img', '/tmp/b.img', f);
	await qemuBoot(['-m', '512'], 60_000, f);
	await grubEnvSet('/boot/grub/grubenv', 'next_entry', 'reimage-armed', f);
	await grubEnvUnset('/boot/grub/grubenv', 'next_entry', f);
	await setfattrValue('/proc/1/fd/3', 'user.a', 'MQ==', true, f);
	assert.equal(f.calls, want);
	assert.equal(seen[3]?.env, { REIMAGE_BIN: 'b' });
	assert.equal(seen[4]?.env, { dracutbasedir: '/tmp/base' });
	assert.is(seen[5]?.outputFile, '/tmp/disk.img.xz');
	assert.is(seen[6]?.input, 'label: gpt\n');
	assert.is(seen[9]?.exit, 'vmTest');
	assert.is(seen[9]?.timeoutMs, 60_000);
	assert.is(seen[12]?.exit, 'afterWrite');
	f.done();
});

test.run();
