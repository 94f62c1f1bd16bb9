// The UEFI boot-entry step after the write (src/stages/efi.ts) on the fake Sys
// with efibootmgr output captured under OVMF: stale entries for the old ESP
// removed, one entry for the image's removable-media loader created; skipped
// without an ESP or without UEFI; every failure reported, never thrown.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ESP_TYPE } from '../../../src/target/efientries.ts';
import { Manifest } from '../../../src/bundle/manifest.ts';
import type { Bundle } from '../../../src/bundle/read.ts';
import type { Run, RunOptions } from '../../../src/stages/context.ts';
import { bootEntry } from '../../../src/stages/efi.ts';
import type { Passed } from '../../../src/stages/phase.ts';
import type { PartIdentity } from '../../../src/target/partitions.ts';
import { createCleanup } from '../../../src/util/cleanup.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys, readCapture } from '../../helpers/fake-sys.ts';
import { good } from '../_manifest.ts';

const OLD_ESP = '0d5c1e4a-7b7a-4c0f-8e6b-5a1b2c3d4e01';
const NEW_ESP = '9e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b';
const OLD: PartIdentity[] = [
	{ node: '/dev/vda1', number: 1, partuuid: OLD_ESP, fstype: 'vfat' },
	{ node: '/dev/vda2', number: 2, partuuid: '0d5c1e4a-7b7a-4c0f-8e6b-5a1b2c3d4e02', fstype: 'ext4' },
];
const NEW: PartIdentity[] = [{ node: '/dev/vda1', number: 1, partuuid: NEW_ESP, fstype: 'vfat' }];
const CREATE = 'efibootmgr -c -d /dev/vda -p 1 -L reimage 2.0 -l \\EFI\\BOOT\\BOOTX64.EFI';

type Setup = { uefi?: boolean; efivarsMounted?: boolean; esp?: boolean; loader?: boolean };

function setup(s: Setup = {}) {
	const f = fakeSys();
	const { uefi = true, efivarsMounted = true, esp = true, loader = true } = s;
	if (uefi) f.file('sys/firmware/efi/efivars/.keep', '');
	if (uefi && efivarsMounted) f.file('sys/firmware/efi/efivars/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c', 'x');
	if (uefi && !efivarsMounted) fs.rmSync(path.join(f.root, 'sys/firmware/efi/efivars/.keep'));
	const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-efi-'));
	const m: Record<string, unknown> & ReturnType<typeof good> = good();
	m['version'] = '2.0';
	m.table.partitions = [
		{
			number: 1,
			start: 2048,
			size: 65536,
			type: esp ? ESP_TYPE.toUpperCase() : 'L',
			uuid: NEW_ESP,
			fs: { type: 'vfat', label: 'ESP' },
		} as (typeof m.table.partitions)[number],
	];
	const log = createLog({ write: () => {} }, Date.now, true);
	const run: Run = { o: { efiEntry: true } as RunOptions, log, cleanup: createCleanup(log), runDir, sys: f, plan: false, notes: [] };
	const p = { disk: { node: '/dev/vda' }, bundle: { manifest: Manifest.parse(m) } as Bundle, kept: [] } as unknown as Passed;
	// The fake mount puts the ESP's files in the mount point, the fake umount takes them away again.
	const espDir = path.join(runDir, 'esp');
	f.script(`mount -t vfat -o ro,nosuid,nodev,noexec /dev/vda1 ${espDir}`, () => {
		if (loader) fs.mkdirSync(path.join(espDir, 'EFI/BOOT'), { recursive: true });
		if (loader) fs.writeFileSync(path.join(espDir, 'EFI/BOOT/BOOTX64.EFI'), 'MZ');
		return {};
	}).script(`umount ${espDir}`, () => {
		fs.rmSync(path.join(espDir, 'EFI'), { recursive: true, force: true });
		return {};
	});
	return { f, run, p, done: () => (f.done(), fs.rmSync(runDir, { recursive: true, force: true })) };
}

const reply = (name: string) => readCapture(name).result;

test("updated: the entry for the old ESP removed, one for the new ESP's removable loader created (firmware apps kept)", async () => {
	const { f, run, p, done } = setup();
	try {
		f.script('efibootmgr -v', reply('efibootmgr-v-debian'))
			.script('efibootmgr -b 0001 -B', reply('efibootmgr-delete-0001'))
			.script(CREATE, reply('efibootmgr-create-removable'));
		const r = await bootEntry(run, p, OLD, NEW);
		assert.is(r.outcome, 'updated', r.reason);
		assert.equal(r.removed, [`Boot0001 debian (\\EFI\\debian\\shimx64.efi on PARTUUID ${OLD_ESP})`]);
		assert.is(r.created, 'reimage 2.0 \\EFI\\BOOT\\BOOTX64.EFI');
		assert.ok(f.calls.includes(CREATE));
		assert.not.ok(
			f.calls.some((c) => c.includes('-b 0000')),
			'the firmware application was touched',
		);
	} finally {
		done();
	}
});

test('efivarfs not mounted (an initramfs without systemd): mounted first', async () => {
	const { f, run, p, done } = setup({ efivarsMounted: false });
	try {
		f.script(`mount -t efivarfs efivarfs ${f.root}/sys/firmware/efi/efivars`)
			.script('efibootmgr -v', reply('efibootmgr-v-fresh'))
			.script(CREATE, reply('efibootmgr-create-removable'));
		const r = await bootEntry(run, p, OLD, NEW);
		assert.is(r.outcome, 'updated', r.reason);
		assert.equal(r.removed, []);
		assert.is(f.calls[0], `mount -t efivarfs efivarfs ${f.root}/sys/firmware/efi/efivars`);
	} finally {
		done();
	}
});

test('skipped: BIOS boot (no /sys/firmware/efi), or an image without an ESP; nothing run', async () => {
	for (const [s, re] of [
		[{ uefi: false }, /this machine did not start by UEFI .*BIOS/],
		[{ esp: false }, /the image has no EFI system partition/],
	] as const) {
		const { f, run, p, done } = setup(s);
		try {
			const r = await bootEntry(run, p, OLD, NEW);
			assert.is(r.outcome, 'skipped');
			assert.match(r.reason, re);
			assert.equal(f.calls, []);
		} finally {
			done();
		}
	}
});

test('failed, not thrown: efibootmgr refuses the delete (captured exit 15); the ESP has no removable loader', async () => {
	const a = setup();
	try {
		// The console capture merges the streams; efibootmgr writes its error to stderr.
		const refused = reply('efibootmgr-delete-0009');
		a.f
			.script('efibootmgr -v', reply('efibootmgr-v-debian'))
			.script('efibootmgr -b 0001 -B', { stderr: refused.stdout, exitCode: refused.exitCode });
		const r = await bootEntry(a.run, a.p, OLD, NEW);
		assert.is(r.outcome, 'failed');
		assert.match(r.reason, /efibootmgr -b 0001 -B.*Could not delete variable: No such file or directory/);
		assert.match(r.reason, /the firmware may still boot \\EFI\\BOOT\\BOOTX64\.EFI as removable media/);
	} finally {
		a.done();
	}
	const b = setup({ loader: false });
	try {
		b.f.script('efibootmgr -v', reply('efibootmgr-v-debian')).script('efibootmgr -b 0001 -B', reply('efibootmgr-delete-0001'));
		const r = await bootEntry(b.run, b.p, OLD, NEW);
		assert.is(r.outcome, 'failed');
		assert.match(r.reason, /the image's ESP \(partition 1\) has no \\EFI\\BOOT\\BOOTX64\.EFI: no entry was created/);
		assert.equal(r.removed.length, 1, 'the stale entry stays');
		assert.not.ok(b.f.calls.some((c) => c.startsWith('efibootmgr -c')));
	} finally {
		b.done();
	}
});

test("kept partitions are not gone: an entry on one (a recovery partition's) stays while the old ESP's goes; a boot kit's entry left on this disk goes too", async () => {
	const kept = '5b7c0e4a-1111-4c0f-8e6b-5a1b2c3d4e03';
	const { f, run, p, done } = setup();
	try {
		const vars = `${reply('efibootmgr-v-debian').stdout}Boot0002* Restore factory state\tHD(3,GPT,${kept},0x100000,0x60000)/File(\\EFI\\reimage\\grubx64.efi)\nBoot0003* reimage re-entry\tHD(3,GPT,${kept},0x100000,0x60000)/File(\\reimage-kit\\vmlinuz)i.n.i.t.r.d.\n`;
		f.script('efibootmgr -v', { stdout: vars })
			.script('efibootmgr -b 0001 -B', reply('efibootmgr-delete-0001'))
			.script('efibootmgr -b 0003 -B')
			.script(CREATE, reply('efibootmgr-create-removable'));
		(p as unknown as { kept: { uuid: string }[] }).kept = [{ uuid: kept.toUpperCase() }];
		const r = await bootEntry(run, p, [...OLD, { node: '/dev/vda3', number: 3, partuuid: kept, fstype: 'vfat' }], NEW);
		assert.is(r.outcome, 'updated', r.reason);
		assert.equal(r.removed, [
			`Boot0001 debian (\\EFI\\debian\\shimx64.efi on PARTUUID ${OLD_ESP})`,
			`Boot0003 reimage re-entry (\\reimage-kit\\vmlinuz on PARTUUID ${kept})`,
		]);
		assert.not.ok(f.calls.includes('efibootmgr -b 0002 -B'));
	} finally {
		done();
	}
});

test.run();
