// The boot kit's UEFI part in the run (src/stages/bootkit.ts) on the fake Sys:
// the firmware entry made first in BootOrder for the kept FAT partition's
// number in the table now (left alone when it already is so), a failure only
// warned about (the write goes on), and its removal after the restore, where
// a failure is an afterWrite error (the kit keeps booting, the record stays open).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import type { Run, RunOptions } from '../../../src/stages/context.ts';
import { kitDone, kitEntry, loadKit, type BootKit } from '../../../src/stages/bootkit.ts';
import { createHash } from 'node:crypto';
import type { Disk } from '../../../src/target/sysfs.ts';
import type { KeptPart } from '../../../src/target/kept.ts';
import { createCleanup } from '../../../src/util/cleanup.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';

const KIT = '5b7c0e4a-1111-4c0f-8e6b-5a1b2c3d4e04';
const ARGS = 'initrd=\\reimage-kit\\initrd.img rd.reimage=auto';
const u = { partuuid: KIT, args: ARGS };
const table = (num: number) => ({
	stdout: JSON.stringify({
		partitiontable: {
			label: 'gpt',
			id: 'A1B2C3D4-0000-4000-8000-000000000001',
			device: '/dev/vda',
			unit: 'sectors',
			partitions: [
				{ node: `/dev/vda${num}`, start: 2048, size: 4096, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: KIT.toUpperCase() },
			],
		},
	}),
});
const entry = (n: string, part: number) =>
	`Boot${n}* reimage re-entry\tHD(${part},GPT,${KIT},0x800,0x1000)/File(\\reimage-kit\\vmlinuz)i.n.i.t.r.d.\n`;
const create = (part: number) => `efibootmgr -c -d /dev/vda -p ${part} -L reimage re-entry -l \\reimage-kit\\vmlinuz -u ${ARGS}`;

function setup() {
	const f = fakeSys();
	f.file('sys/firmware/efi/efivars/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c', 'x');
	const lines: string[] = [];
	const log = createLog({ write: (l: string) => void lines.push(l) }, Date.now, false);
	const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-kit-'));
	const run: Run = { o: { efiEntry: true } as RunOptions, log, cleanup: createCleanup(log), runDir, sys: f, plan: false, notes: [] };
	return { f, run, lines, done: () => (f.done(), fs.rmSync(runDir, { recursive: true, force: true })) };
}

test("kitEntry: made first (first in BootOrder), then this kit's older entries (an earlier attempt, the old number) removed; already first and active for the number now: nothing run; another disk's kit entry untouched", async () => {
	const a = setup();
	try {
		const other = `Boot0007* reimage re-entry\tHD(4,GPT,11111111-2222-4333-8444-555555555555,0x800,0x1000)/File(\\reimage-kit\\vmlinuz)\n`;
		const debian = 'Boot0001* debian\tHD(1,GPT,0d5c1e4a-7b7a-4c0f-8e6b-5a1b2c3d4e01,0x800,0x10000)/File(\\EFI\\debian\\shimx64.efi)\n';
		a.f
			.script('sfdisk --json /dev/vda', table(4))
			.script(
				'efibootmgr -v',
				{ stdout: `BootOrder: 0001,0003,0007\n${debian}${entry('0003', 3)}${other}` },
				{ stdout: `BootOrder: 0004,0001,0003,0007\n${debian}${entry('0003', 3)}${entry('0004', 4)}${other}` },
			)
			.script(create(4))
			.script('efibootmgr -b 0003 -B');
		await kitEntry(a.run, '/dev/vda', u);
		assert.equal(a.f.calls.slice(-3), [create(4), 'efibootmgr -v', 'efibootmgr -b 0003 -B']);
		assert.not.ok(a.f.calls.includes('efibootmgr -b 0007 -B'), "another disk's kit entry was removed");
		assert.match(a.lines.join(''), /UEFI boot entry "reimage re-entry" first in BootOrder \(partition 4,/);
	} finally {
		a.done();
	}
	const b = setup();
	try {
		b.f.script('sfdisk --json /dev/vda', table(4)).script('efibootmgr -v', { stdout: `BootOrder: 0003,0001\n${entry('0003', 4)}` });
		await kitEntry(b.run, '/dev/vda', u);
		assert.equal(b.f.calls, ['sfdisk --json /dev/vda', 'efibootmgr -v']);
	} finally {
		b.done();
	}
	// First, but switched off (efibootmgr -A): made again.
	const c = setup();
	try {
		c.f
			.script('sfdisk --json /dev/vda', table(4))
			.script(
				'efibootmgr -v',
				{ stdout: `BootOrder: 0003\n${entry('0003', 4).replace('Boot0003*', 'Boot0003')}` },
				{ stdout: `BootOrder: 0005,0003\n${entry('0005', 4)}${entry('0003', 4)}` },
			)
			.script(create(4))
			.script('efibootmgr -b 0003 -B');
		await kitEntry(c.run, '/dev/vda', u);
		assert.ok(c.f.calls.includes(create(4)));
		assert.ok(c.f.calls.includes('efibootmgr -b 0003 -B'));
	} finally {
		c.done();
	}
});

test('kitEntry: no such partition in the table, or efibootmgr failing: warned, not thrown (the write goes on)', async () => {
	const a = setup();
	try {
		a.f.script('sfdisk --json /dev/vda', { stdout: '' });
		await kitEntry(a.run, '/dev/vda', u);
		assert.match(
			a.lines.join(''),
			/could not make the UEFI boot entry "reimage re-entry" \(the table on \/dev\/vda has no partition PARTUUID 5b7c.*a power cut now needs the reimage initrd booted by hand once/,
		);
	} finally {
		a.done();
	}
	const b = setup();
	try {
		b.f
			.script('sfdisk --json /dev/vda', table(4))
			.script('efibootmgr -v', { stdout: 'BootOrder: 0001\n' })
			.script(create(4), { exitCode: 5, stderr: 'Could not prepare Boot variable: No space left on device' });
		await kitEntry(b.run, '/dev/vda', u);
		assert.match(b.lines.join(''), /could not make the UEFI boot entry .*No space left on device/);
		assert.not.ok(b.f.calls.includes('efibootmgr -b 0003 -B'), 'the old entry went before a new one existed');
	} finally {
		b.done();
	}
});

test('kitDone: our entries removed after the restore; a removal that fails is an afterWrite error saying the kit boots again', async () => {
	const kit: BootKit = { where: '/dev/vda3:/reimage-kit', code: Buffer.alloc(440), uefi: u };
	const a = setup();
	try {
		a.f
			.script('efibootmgr -v', { stdout: `BootOrder: 0005,0003\n${entry('0003', 4)}` }, { stdout: 'BootOrder: 0005\n' })
			.script('efibootmgr -b 0003 -B');
		await kitDone(a.run, kit);
		assert.ok(a.f.calls.includes('efibootmgr -b 0003 -B'));
		assert.match(a.lines.join(''), /UEFI boot entry "reimage re-entry" removed/);
	} finally {
		a.done();
	}
	const b = setup();
	try {
		b.f
			.script('efibootmgr -v', { stdout: `BootOrder: 0003\n${entry('0003', 4)}` })
			.script('efibootmgr -b 0003 -B', { exitCode: 5, stderr: 'Could not delete variable' });
		const e = await kitDone(b.run, kit).then(
			() => undefined,
			(x: unknown) => x,
		);
		assert.ok(e instanceof ReimageError && e.code >= 10, String(e));
		assert.match(
			(e as Error).message,
			/could not remove the UEFI boot entry "reimage re-entry" after the restore .*the firmware still boots the reimage initrd, which finishes the job again/,
		);
	} finally {
		b.done();
	}
});

// A disk file whose sectors 100.. hold the BIOS part's three files, and a kit.json for them (and a UEFI part on KIT).
function kitDisk(dir: string) {
	const disk = path.join(dir, 'disk.img');
	const bytes = Buffer.alloc(3 * 512, 7);
	fs.writeFileSync(disk, Buffer.concat([Buffer.alloc(100 * 512), bytes]));
	const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
	const piece = (file: string, i: number) => ({
		file,
		size: 512,
		sha256: sha(bytes.subarray(i * 512, (i + 1) * 512)),
		extents: [[100 + i, 1]],
	});
	const fat = { kernel: Buffer.from('MZ kernel'), initrd: Buffer.from('initrd bytes') };
	const kit = {
		format: 'reimage-kit/1',
		created: '2026-12-04T00:00:00Z',
		partStart: 2048,
		cmdline: 'rd.reimage=auto',
		bios: { bootCode: '00'.repeat(440), core: piece('core.img', 0), kernel: piece('vmlinuz', 1), initrd: piece('initrd.img', 2) },
		uefi: {
			partuuid: KIT,
			kernel: { file: 'vmlinuz', size: fat.kernel.length, sha256: sha(fat.kernel) },
			initrd: { file: 'initrd.img', size: fat.initrd.length, sha256: sha(fat.initrd) },
		},
	};
	return { disk: { node: disk, sectorSize: 512 } as Disk, kit, fat };
}

test('loadKit on a UEFI machine: the UEFI part checked on its kept FAT partition; refused before writing when that partition is not kept or a file differs', async () => {
	for (const c of ['ok', '4kn', 'not kept', 'changed'] as const) {
		const a = setup();
		try {
			const { disk, kit, fat } = kitDisk(a.run.runDir);
			// 4Kn: the BIOS part (512-byte sectors) is left out, the UEFI part alone is the path.
			if (c === '4kn') disk.sectorSize = 4096;
			a.f.file('sys/class/block/vda3/start', '2048\n');
			const kitDir = path.join(a.run.runDir, 'kit');
			const espDir = path.join(a.run.runDir, 'kit-esp');
			a.f
				.script('blkid -p -o export /dev/vda3', { stdout: 'TYPE=ext4\n' })
				.script(`mount -t ext4 -o ro,nosuid,nodev,noexec /dev/vda3 ${kitDir}`, () => {
					fs.mkdirSync(path.join(kitDir, 'reimage-kit'), { recursive: true });
					fs.writeFileSync(path.join(kitDir, 'reimage-kit/kit.json'), JSON.stringify(kit));
					return {};
				})
				.script(`umount ${kitDir}`, () => (fs.rmSync(path.join(kitDir, 'reimage-kit'), { recursive: true }), {}))
				.script(`mount -t vfat -o ro,nosuid,nodev,noexec /dev/vda4 ${espDir}`, () => {
					fs.mkdirSync(path.join(espDir, 'reimage-kit'), { recursive: true });
					fs.writeFileSync(path.join(espDir, 'reimage-kit/vmlinuz'), fat.kernel);
					fs.writeFileSync(path.join(espDir, 'reimage-kit/initrd.img'), c === 'changed' ? Buffer.from('another initrd') : fat.initrd);
					return {};
				})
				.script(`umount ${espDir}`, () => (fs.rmSync(path.join(espDir, 'reimage-kit'), { recursive: true }), {}));
			a.f.script(`sfdisk --json ${disk.node}`, table(4)).script('efibootmgr -v', { stdout: 'BootOrder: 0001\n' });
			const kept =
				c === 'not kept' ? [] : [{ number: 4, node: '/dev/vda4', start: 4096, size: 4096, type: 'U', uuid: KIT.toUpperCase() } as KeptPart];
			const got = await loadKit(a.run, disk, '/dev/vda3', kept).then(
				(k) => k,
				(e: unknown) => e as Error,
			);
			if (c === 'ok' || c === '4kn') {
				assert.ok(!(got instanceof Error), String(got));
				assert.is((got as BootKit).code === undefined, c === '4kn', `${c}: the BIOS boot code`);
				assert.equal((got as BootKit).uefi, { partuuid: KIT, args: 'initrd=\\reimage-kit\\initrd.img rd.reimage=auto' });
				assert.match(a.lines.join(''), /its firmware entry boots the reimage initrd from the kept FAT partition/);
			} else {
				assert.ok(got instanceof ReimageError && got.code < 10, `${c}: ${String(got)}`);
				assert.match(
					got.message,
					c === 'not kept'
						? /its UEFI part is on the partition PARTUUID 5b7c.* which this run does not keep .*keep PARTUUID=5b7c/
						: /reimage-kit\/initrd\.img on \/dev\/vda4 has sha256 [0-9a-f]{64}, not the kit's/,
				);
				assert.match(got.message, /nothing was written/);
			}
		} finally {
			a.done();
		}
	}
});

test.run();
