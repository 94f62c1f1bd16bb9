// LVM in the VM (issue 16): the old system's root and data are logical volumes
// of volume group "vgkiosk", and so are the new image's (same name, another
// UUID: the clash). The real dracut initrd (with dracut's lvm module) reads
// the old system by activating its group read-only, seeing only the target,
// deactivates it before the write, activates the new group after it,
// restores the identity into the new LVs and deactivates them before the
// reboot. The disk is inspected on the host at the LVs' extents (the host has
// no device-mapper). One boot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/fixtures.ts';
import { reimage } from '../helpers/reimage.ts';
import { appendPartition, armedArgs, bootVm, vmKey } from '../helpers/vm.ts';
import { copySparse, describe, sh, tmpDir } from '../helpers/sys.ts';

const t = suite('vm: LVM old system and image');

type Lvm = { vg: string; uuid: string; lvs: { name: string; offset: number; size: number }[] };
type M = { table: { sectorSize: number; partitions: { number: number; start: number; lvm?: Lvm }[] } };

/** FN with the file system of logical volume NAME of bundle manifest M mounted read-only from disk IMG at its extents. */
function withLv<T>(img: string, m: M, name: string, fn: (dir: string) => T): T {
	const p = m.table.partitions.find((x) => x.lvm);
	const lv = p?.lvm?.lvs.find((l) => l.name === name);
	if (!p || !lv) throw new Error(`no LV ${name} in the manifest`);
	const dir = tmpDir('reimage-vm-lv-');
	sh('mount', ['-t', 'ext4', '-o', `ro,noload,loop,offset=${p.start * m.table.sectorSize + lv.offset},sizelimit=${lv.size}`, img, dir]);
	try {
		return fn(dir);
	} finally {
		sh('umount', [dir]);
	}
}

t(
	'an old system on LVM reimaged with an LVM image of the same VG name: identity restored into the new LVs, VGs activated and deactivated',
	async () => {
		const kinds = path.join(tmpDir('reimage-vm-lvm-'), 'lvm');
		sh('bash', [path.join(REPO, 'test/fixtures/make-kinds.sh'), 'lvm', kinds]);
		const list = path.join(kinds, 'list');
		const bundle = path.join(tmpDir('reimage-vm-lvm-bundle-'), 'bundle');
		const p = reimage(['pack', path.join(kinds, 'v2.img'), '--out', bundle, '--codec', 'zstd', '--retain', list, '--sign', vmKey().key]);
		assert.is(p.status, 0, describe(p));
		const m = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as M;
		const disk = path.join(tmpDir('reimage-vm-lvm-disk-'), 'disk.img');
		copySparse(path.join(kinds, 'v1.img'), disk);
		const tree = tmpDir('reimage-vm-lvm-tree-');
		fs.cpSync(bundle, path.join(tree, 'bundle'), { recursive: true });
		appendPartition(disk, 'REIMAGE', tree, 32);
		const t0 = Date.now();
		const vm = await bootVm(await armedArgs('auto', 'LABEL=REIMAGE:/bundle', 'serial:LVM1'), [{ file: disk, serial: 'LVM1' }]);
		const seconds = (Date.now() - t0) / 1000;
		assert.match(vm.serial, /point of no return: replacing everything on \/dev\/vda/, vm.serial.slice(-3000));
		assert.match(vm.serial, /sha256 ok, 5\/5 entries restored/, vm.serial.slice(-3000));
		assert.match(vm.serial, /reimage: done; rebooting into the new system/);
		withLv(disk, m, 'root', (root) => {
			assert.is(fs.readFileSync(path.join(root, 'etc/machine-id'), 'utf8').trim().length > 0, true);
			assert.ok(fs.existsSync(path.join(root, 'etc/kiosk')), 'the identity directory is in the new root LV');
			const report = JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')) as {
				outcome: string;
				notes: string[];
			};
			assert.is(report.outcome, 'success');
			const notes = report.notes.join('\n');
			assert.match(notes, /LVM: volume group vgkiosk \(\S+\) on \/dev\/vda1 activated read-only for the old system/);
			assert.match(notes, /LVM: volume group vgkiosk deactivated/);
			assert.match(
				notes,
				new RegExp(`LVM: volume group vgkiosk \\(${m.table.partitions[0]?.lvm?.uuid}\\) on /dev/vda1 activated for the new system`),
			);
		});
		withLv(disk, m, 'data', (data) => {
			assert.match(fs.readFileSync(path.join(data, 'config'), 'utf8'), /kiosk_url=https:\/\/example\.test\/42/);
			assert.ok(fs.existsSync(path.join(data, 'README-new')), 'the new image data LV');
		});
		console.log(`vm lvm: ${seconds.toFixed(0)} s in QEMU`);
	},
);

t.run();
