// Power cuts with no human (issue 14): a real Debian v1 disk whose last
// partition holds a signed v2 bundle and the boot kit (`reimage kit`, run on
// the host on that partition, the code a machine runs). The armed reimage
// initrd is booted once; QEMU is killed at a point of the run, then started
// again with no kernel (the firmware boots the disk, as after a power cut) and
// killed at the next point, and so on; the last start is let finish, and the
// result boots v2 with v1's identity, its report recording the re-entry.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reimage } from '../helpers/reimage.ts';
import { appendFat, appendPartition, armedArgs, bootUntil, initrd, kernel, vmKey, type Boot, type BootOptions } from '../helpers/vm.ts';
import { attachLoop, copySparse, describe, detachLoop, partNode, sfdiskJson, sh, tmpDir } from '../helpers/sys.ts';
import { ovmf } from '../../src/vmtest/firmware.ts';
import { debianBundle, debianDisk, identityOf, markerFor, type ImageKind } from '../helpers/images.ts';

const t = suite('vm: power cuts after the point of no return, no human');

const percent = (serial: string) => Math.max(0, ...[...serial.matchAll(/writing:\s+(\d+)%/g)].map((m) => Number(m[1])));
const marker = (want: string) => (serial: string) => serial.split(/\r?\n/).some((l) => new RegExp(want).test(l.trim()));

// A cut: its name and when the serial log says it is time.
type Cut = { name: string; when: (serial: string) => boolean };
// Six points, each under SeaBIOS and under OVMF: the armed run is held just
// before the image's first MiB goes down (rd.reimage.test-pause=head) and cut
// there; each start from the kit after it is cut at the next point.
const HEAD: Cut = { name: 'just before the first MiB', when: (s) => /head pause point reached/.test(s) };
const CUTS: Cut[] = [
	{ name: 'early write', when: (s) => percent(s) >= 10 },
	{ name: 'mid write', when: (s) => percent(s) >= 50 },
	{ name: 'late write', when: (s) => percent(s) >= 90 },
	{ name: 'settle', when: (s) => /== settle/.test(s) },
	{ name: 'restore', when: (s) => /== restore/.test(s) },
];

// kioskDisk: v1 of KIND with a partition REIMAGE holding the v2 bundle and the
// kit; under UEFI also a FAT partition RKIT after it for the kit's UEFI part
// (the bundle keeps it).
function kioskDisk(kind: ImageKind): { disk: string; id: ReturnType<typeof identityOf> } {
	const efi = kind.firmware === 'efi';
	const v1 = debianDisk(kind, 1);
	const id = identityOf(v1, kind);
	const work = tmpDir('reimage-powercut-');
	const disk = path.join(work, 'disk.img');
	copySparse(v1, disk);
	const tree = path.join(work, 'tree');
	fs.cpSync(debianBundle(kind, vmKey().key, efi ? ['PARTLABEL=RKIT'] : []), path.join(tree, 'bundle'), { recursive: true });
	appendPartition(disk, 'REIMAGE', tree, 256, true);
	if (efi) appendFat(disk, 'RKIT', 192);
	const cmdline = path.join(work, 'cmdline');
	fs.writeFileSync(cmdline, 'console=ttyS0\n');
	const dev = attachLoop(disk);
	try {
		const args = [
			'kit',
			'--part',
			partNode(dev, 3),
			...(efi ? ['--esp', partNode(dev, 4)] : []),
			'--bundle',
			'LABEL=REIMAGE:/bundle',
			'--target',
			'serial:KIOSK42',
		];
		const r = reimage([...args, '--initrd', initrd(), '--kver', kernel().kver, '--cmdline', cmdline]);
		assert.is(r.status, 0, describe(r));
		assert.match(r.stdout, /boot kit on \/dev\/loop\d+p3 .* core at sector \d+/);
		if (efi) assert.match(r.stdout, /its UEFI part on \/dev\/loop\d+p4 \(PARTUUID [0-9a-f-]{36}: keep it\)/);
	} finally {
		detachLoop(dev);
	}
	return { disk, id };
}

// reportOf: the new system's report.json (root: partition 2 of DISK).
function reportOf(disk: string): Record<string, any> {
	const root = sfdiskJson(disk).partitions.find((p) => /2$/.test(p.node));
	if (!root) throw new Error(`${disk} has no partition 2`);
	return JSON.parse(sh('debugfs', ['-R', 'cat /var/log/reimage/report.json', `${disk}?offset=${root.start * 512}`])) as Record<string, any>;
}

async function chain(kind: ImageKind, cuts: Cut[], fw: BootOptions['firmware'] = {}): Promise<void> {
	const efi = kind.firmware === 'efi';
	const t0 = Date.now();
	const { disk, id } = kioskDisk(kind);
	const drives = [{ file: disk, serial: 'KIOSK42' }];
	const t1 = Date.now();
	const times: string[] = [];
	const took = (name: string, a: number) => {
		times.push(`${name} ${((Date.now() - a) / 1000).toFixed(0)} s`);
		// REIMAGE_VM_KEEP_SERIAL=PREFIX keeps each boot's console as PREFIX-N.log (for a failure's post-mortem).
		if (process.env.REIMAGE_VM_KEEP_SERIAL && vm) fs.writeFileSync(`${process.env.REIMAGE_VM_KEEP_SERIAL}-${times.length}.log`, vm.serial);
	};
	// The armed initrd, held and cut just before the image's first MiB goes down.
	let a = Date.now();
	let vm: Boot | undefined;
	vm = await bootUntil(
		`${await armedArgs('auto', 'LABEL=REIMAGE:/bundle', 'serial:KIOSK42')} rd.reimage.test-pause=head`,
		drives,
		HEAD.when,
		fw.ovmf ? { ovmf: fw.ovmf } : {},
	);
	took(HEAD.name, a);
	assert.ok(vm.killed, `${HEAD.name}: cut (${vm.serial.slice(-800)})`);
	assert.match(vm.serial, /writing:\s+100%/);
	assert.match(vm.serial, /boot kit \/dev\/vda3:\/reimage-kit checked on the disk/);
	if (efi) {
		assert.match(vm.serial, /its firmware entry boots the reimage initrd from the kept FAT partition/);
		assert.match(vm.serial, /UEFI boot entry "reimage re-entry" first in BootOrder \(partition 4,/);
	}
	assert.match(vm.serial, /point of no return: replacing everything on \/dev\/vda/);
	let attempt = 1;
	for (const cut of cuts) {
		a = Date.now();
		vm = await bootUntil('', drives, cut.when, { firmware: fw });
		took(cut.name, a);
		attempt++;
		assert.ok(vm.killed, `${cut.name}: cut (${vm.serial.slice(-800)})`);
		assert.match(vm.serial, new RegExp(`re-entry: attempt ${attempt} `), `${cut.name}: the firmware booted the kit, which re-entered`);
	}
	a = Date.now();
	vm = await bootUntil('', drives, () => false, { firmware: fw });
	took('finish', a);
	attempt++;
	assert.not.ok(vm.killed, 'the last run rebooted on its own');
	assert.match(vm.serial, new RegExp(`re-entry: attempt ${attempt} `));
	assert.match(vm.serial, /sha256 ok, 3\/3 entries restored/);
	if (efi) assert.match(vm.serial, /UEFI boot entry "reimage re-entry" removed/);
	a = Date.now();
	vm = await bootUntil('', drives, marker(markerFor(2, id)), { firmware: fw });
	took('result boot', a);
	assert.ok(vm.killed, `the result booted v2 with v1's identity (marker): ${vm.serial.slice(-1500)}`);
	const report = reportOf(disk);
	assert.is(report.outcome, 'success');
	assert.is(report.reentry?.attempt, attempt, JSON.stringify(report.reentry));
	console.log(`  ${kind.firmware}: disk and kit ${((t1 - t0) / 1000).toFixed(0)} s; ${times.join(', ')}`);
}

// About 14 minutes under TCG (six boots of a 500 MiB Debian disk, measured
// 2026-12-03 on the shared 2-core machine): only with REIMAGE_VM_POWERCUT=1.
const maybe = process.env.REIMAGE_VM_POWERCUT === '1' ? t : t.skip;

maybe(
	'SeaBIOS: cut just before the first MiB, early, mid and late in the write, in settle and in restore; each time the disk boots the kit with no input, and the last run ends in v2 with v1 identity',
	async () => {
		await chain({ firmware: 'bios' }, CUTS);
	},
);

maybe(
	"OVMF: the same six cuts; each time the firmware's entry boots the kit's UEFI part with no input, and the last run ends in v2 with v1 identity",
	async () => {
		// One variable store for every start: the entry the run makes must outlive each cut.
		await chain({ firmware: 'efi' }, CUTS, { ovmf: await ovmf(tmpDir('reimage-powercut-ovmf-')) });
	},
);

t.run();
