// reimage kit with its UEFI part (--esp) on a real loop disk: a GPT disk with
// an ext4 bundle partition and a FAT partition. The kernel and initrd land on
// the FAT partition through mtools (this host's kernel has no vfat), read back
// here with mtools and compared with kit.json; every wrong --esp is refused
// with one sentence before anything is written (the bundle partition holds no
// reimage-kit/ afterwards).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, exec, mount, partNode, sh, tmpDir, umount } from '../helpers/sys.ts';
import { kernel } from '../helpers/vm.ts';

const t = suite('reimage kit --esp');

// A 160 MiB GPT disk: 1 = ext4 "REIMAGE" (the bundle's), 2 = FAT "RKIT" (an ESP), 3 = ext4 "OTHER".
function disk(): { img: string; initrd: string; cmdline: string } {
	const dir = tmpDir('reimage-kit-');
	const img = path.join(dir, 'disk.img');
	fs.writeFileSync(img, '');
	fs.truncateSync(img, 160 * 2 ** 20);
	sh('sfdisk', ['-q', img], {
		input: 'label: gpt\nstart=2048,size=64M,type=L,name=REIMAGE\nsize=48M,type=U,name=RKIT\nsize=32M,type=L,name=OTHER\n',
	});
	const parts = (JSON.parse(sh('sfdisk', ['--json', img])) as { partitiontable: { partitions: { start: number; size: number }[] } })
		.partitiontable.partitions;
	const [p1, p2, p3] = parts as [{ start: number; size: number }, { start: number; size: number }, { start: number; size: number }];
	sh('mkfs.ext4', ['-q', '-L', 'REIMAGE', '-E', `offset=${p1.start * 512}`, img, `${p1.size / 2}k`]);
	sh('mkfs.fat', ['-F', '16', '-n', 'RKIT', '--offset', String(p2.start), img, String(p2.size / 2)]);
	sh('mkfs.ext4', ['-q', '-L', 'OTHER', '-E', `offset=${p3.start * 512}`, img, `${p3.size / 2}k`]);
	const initrd = path.join(dir, 'initrd.img');
	fs.writeFileSync(initrd, Buffer.alloc(3 * 2 ** 20, 0x5a));
	const cmdline = path.join(dir, 'cmdline');
	fs.writeFileSync(cmdline, 'console=ttyS0\n');
	return { img, initrd, cmdline };
}

const kitArgs = (dev: string, esp: string, d: { initrd: string; cmdline: string }) => [
	'kit',
	'--part',
	partNode(dev, 1),
	'--esp',
	esp,
	'--bundle',
	'LABEL=REIMAGE:/bundle',
	'--target',
	'serial:KIOSK42',
	'--initrd',
	d.initrd,
	'--kver',
	kernel().kver,
	'--cmdline',
	d.cmdline,
];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t('the UEFI part on the FAT partition: kernel and initrd as reimage-kit/ files whose sha256 kit.json names, with the PARTUUID', () => {
	const d = disk();
	const dev = attachLoop(d.img);
	try {
		const r = reimage(kitArgs(dev, partNode(dev, 2), d));
		assert.is(r.status, 0, describe(r));
		const uuid = sh('blkid', ['-p', '-s', 'PART_ENTRY_UUID', '-o', 'value', partNode(dev, 2)])
			.trim()
			.toLowerCase();
		assert.match(r.stdout, new RegExp(`its UEFI part on ${partNode(dev, 2)} \\(PARTUUID ${uuid}: keep it\\)`));
		const dir = mount(partNode(dev, 1));
		let kit: { uefi?: { partuuid: string; kernel: { file: string; sha256: string }; initrd: { file: string; sha256: string } } };
		try {
			kit = JSON.parse(fs.readFileSync(path.join(dir, 'reimage-kit/kit.json'), 'utf8'));
		} finally {
			umount(dir);
		}
		assert.is(kit.uefi?.partuuid, uuid);
		for (const [f, want] of [
			[kit.uefi?.kernel, fs.readFileSync(kernel().vmlinuz)],
			[kit.uefi?.initrd, fs.readFileSync(d.initrd)],
		] as const) {
			const out = path.join(tmpDir('reimage-kit-back-'), 'f');
			sh('mcopy', ['-i', partNode(dev, 2), `::/reimage-kit/${f?.file}`, out], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
			const got = fs.readFileSync(out);
			assert.is(sha(got), sha(want), `${f?.file} on the FAT partition`);
			assert.is(f?.sha256, sha(want));
		}
		// Made again: the FAT directory is replaced, not added to.
		assert.is(reimage(kitArgs(dev, partNode(dev, 2), d)).status, 0);
		const list = sh('mdir', ['-i', partNode(dev, 2), '-b', '::/reimage-kit'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
		assert.equal(
			list
				.trim()
				.split('\n')
				.map((l) => path.basename(l.trim()).toLowerCase())
				.sort(),
			['initrd.img', 'vmlinuz'],
		);
	} finally {
		detachLoop(dev);
	}
});

t("a wrong --esp (not FAT, the bundle partition itself, another disk's, missing) is refused (2) with one sentence, nothing written", () => {
	const d = disk();
	const other = disk();
	const dev = attachLoop(d.img);
	const dev2 = attachLoop(other.img);
	try {
		for (const [esp, re] of [
			[partNode(dev, 3), /--esp \S+p3 holds ext4, not FAT: UEFI firmware reads only FAT; give a FAT partition \(mkfs\.vfat\)/],
			[partNode(dev, 1), /--esp \S+p1 is the bundle's partition \(--part\): give a separate FAT partition of the same disk/],
			[
				partNode(dev2, 2),
				/--esp \S+p2 is not a partition of loop\d+ that holds \S+p1: the firmware entry and the kit must be on the disk that is reimaged/,
			],
			['/dev/nonexistent-esp', /--esp \/dev\/nonexistent-esp does not exist: give a FAT partition of the same disk/],
		] as const) {
			const r = reimage(kitArgs(dev, esp, d));
			assert.is(r.status, 2, `${esp}: ${describe(r)}`);
			assert.match(r.stderr, re);
			const dir = mount(partNode(dev, 1));
			try {
				assert.not.ok(fs.existsSync(path.join(dir, 'reimage-kit')), `${esp}: the bundle partition was written`);
			} finally {
				umount(dir);
			}
		}
	} finally {
		detachLoop(dev2);
		detachLoop(dev);
	}
});

t(
	'a 4Kn disk: no BIOS part (its boot sector counts 512-byte sectors); without --esp refused (2) naming the fix, with it the UEFI part alone',
	() => {
		const dir = tmpDir('reimage-kit-4kn-');
		const img = path.join(dir, 'disk.img');
		fs.writeFileSync(img, '');
		fs.truncateSync(img, 160 * 2 ** 20);
		const dev = sh('losetup', ['-f', '--show', '--sector-size', '4096', img]).trim();
		try {
			sh('sfdisk', ['-q', dev], { input: 'label: gpt\nsize=64M,type=L,name=REIMAGE\nsize=48M,type=U,name=RKIT\n' });
			exec('partx', ['-u', dev]);
			sh('mkfs.ext4', ['-q', '-L', 'REIMAGE', partNode(dev, 1)]);
			sh('mkfs.fat', ['-F', '16', '-s', '1', '-n', 'RKIT', partNode(dev, 2)]);
			const d = { initrd: path.join(dir, 'initrd.img'), cmdline: path.join(dir, 'cmdline') };
			fs.writeFileSync(d.initrd, Buffer.alloc(2 ** 20, 1));
			fs.writeFileSync(d.cmdline, 'console=ttyS0\n');
			const without = reimage(kitArgs(dev, partNode(dev, 2), d).filter((a, i, all) => a !== '--esp' && all[i - 1] !== '--esp'));
			assert.is(without.status, 2, describe(without));
			assert.match(
				without.stderr,
				/loop\d+ has 4096-byte sectors: the kit's BIOS part needs 512-byte ones; give --esp \(a FAT partition of the same disk\) for the UEFI part/,
			);
			const r = reimage(kitArgs(dev, partNode(dev, 2), d));
			assert.is(r.status, 0, describe(r));
			assert.match(r.stdout, /no BIOS part \(4096-byte sectors\), its UEFI part on \S+p2/);
			const m = mount(partNode(dev, 1));
			try {
				const kit = JSON.parse(fs.readFileSync(path.join(m, 'reimage-kit/kit.json'), 'utf8'));
				assert.is(kit.bios, undefined);
				assert.ok(kit.uefi?.partuuid);
			} finally {
				umount(m);
			}
		} finally {
			exec('partx', ['-d', dev]);
			exec('losetup', ['-d', dev]);
		}
	},
);

t.run();
