// Faults that only a VM can inject: a power cut at several points of the write
// (QEMU killed), an I/O error in the middle of the write (QEMU blkdebug), and
// not enough RAM (a small -m). Asserted from the serial log and on the disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { armedArgs, bootUntil, bundleTree, inspectDisk, oldDiskCopy, sha256File, stick, vmConfig } from '../helpers/vm.ts';
import { attachLoop, detachLoop, exec, mount, partNode, tmpDir, umount } from '../helpers/sys.ts';

const t = suite('vm: faults');
// What `reimage arm` writes for its armed entry (the same code: test/helpers/vm.ts armedArgs).
const ARM = await armedArgs('auto', 'LABEL=STICK:/bundle', 'serial:KIOSK42');

function region(img: string, at: 'head' | 'tail'): Buffer {
	const fd = fs.openSync(img, 'r');
	const b = Buffer.alloc(2 ** 20);
	fs.readSync(fd, b, 0, b.length, at === 'head' ? 0 : fs.statSync(img).size - b.length);
	fs.closeSync(fd);
	return b;
}

// A disk that cannot boot anything: no MBR, no primary or backup GPT.
function assertUnbootable(img: string): void {
	assert.ok(
		region(img, 'head').every((x) => x === 0),
		'first MiB (boot code, MBR, primary GPT) is zero',
	);
	assert.ok(
		region(img, 'tail').every((x) => x === 0),
		'last MiB (backup GPT) is zero',
	);
	assert.is.not(exec('sfdisk', ['--json', img]).status, 0, 'no partition table to boot from');
}

const percent = (serial: string) => Math.max(0, ...[...serial.matchAll(/writing:\s+(\d+)%/g)].map((m) => Number(m[1])));

// The run also waits just before the image's first MiB goes down (rd.reimage.test-pause=head): the serial log is
// read every 100 ms, and the last 5 % of the write and the first MiB take less, so without the pause a late cut
// could find the write whole (was: "power cut at 95 %" racing the end of the write). A cut seen late lands there.
const PAUSED = `${ARM} rd.reimage.test-pause=head`;

for (const cut of [5, 50, 95]) {
	t(`power cut at ${cut} % of the write: the disk never holds a bootable half system`, async () => {
		const disk = oldDiskCopy();
		const usb = stick('STICK', bundleTree());
		const vm = await bootUntil(
			PAUSED,
			[
				{ file: disk, serial: 'KIOSK42' },
				{ file: usb, serial: 'STICK1', usb: true },
			],
			(s) => percent(s) >= cut,
		);
		assert.ok(vm.killed, 'the VM was cut off mid-write');
		assert.match(vm.serial, /point of no return/);
		assert.ok(percent(vm.serial) < 100 || !/reimaged \/dev/.test(vm.serial), 'cut before the write finished');
		assertUnbootable(disk);
	});
}

t(
	'an I/O error in the middle of the write: the disk is invalidated and the machine stops with the reason; booting the same stick again finishes the job with every retained entry',
	async () => {
		const disk = oldDiskCopy();
		const { usb, rules } = ioErrorSetup();
		const vm = await bootUntil(
			ARM,
			[
				{ file: disk, serial: 'KIOSK42', blkdebug: rules },
				{ file: usb, serial: 'STICK1', usb: true },
			],
			(s) => /Halted\./.test(s),
		);
		assert.match(vm.serial, /failed \(EIO\); retrying from RAM \(1\/2\)/, 'a failed block is retried from the RAM copy');
		assert.match(vm.serial, /failed 3 times \(EIO/);
		assert.match(vm.serial, /failed after the point of no return/);
		assert.match(vm.serial, /the disk was invalidated/);
		assert.match(vm.serial, /reimage: FAILED after the point of no return \(exit 10\)\. The disk will not boot\./);
		assert.match(vm.serial, /the log was saved as reimage-failed-.*\.log on \/dev\/sd/);
		assert.match(
			vm.serial,
			/retained set saved in \/dev\/sd\w+:\/bundle\/reimage-retained\//,
			'the retained set went onto the stick before the first write',
		);
		assertUnbootable(disk);
		// The disk healthy again, the same stick: the run finds the set it saved there, writes, restores it and removes it.
		const again = await bootUntil(
			ARM,
			[
				{ file: disk, serial: 'KIOSK42' },
				{ file: usb, serial: 'STICK1', usb: true },
			],
			() => false,
		);
		assert.not.ok(again.killed, 'the VM rebooted on its own');
		assert.match(again.serial, /found the retained set an earlier run saved/);
		assert.match(again.serial, /sha256 ok, 19\/19 entries restored/);
		inspectDisk(disk, (root) => {
			assert.is(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8').trim(), 'kiosk-old-42');
			const report = JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')) as {
				outcome: string;
				restoredFrom: string;
			};
			assert.is(report.outcome, 'success');
			assert.match(report.restoredFrom, /^\/dev\/sd\w+:\/bundle\/reimage-retained\/KIOSK42-/);
		});
		const dev = attachLoop(usb);
		try {
			const m = mount(partNode(dev, 1));
			const left = fs.readdirSync(path.join(m, 'bundle'));
			umount(m);
			assert.not.ok(left.includes('reimage-retained'), 'the saved set is gone from the stick once every entry is back');
		} finally {
			detachLoop(dev);
		}
	},
);

/**
 * A bundle stick and a blkdebug rules file: EIO on every write that touches a
 * sector the write must reach, the first one the block map maps from ~98 MiB
 * into the 192 MiB image on (by default only mapped blocks are written; the
 * disk zeroes the rest).
 */
function ioErrorSetup(): { usb: string; rules: string } {
	const tree = bundleTree();
	const rules = path.join(tmpDir('reimage-blkdebug-'), 'rules.conf');
	const sector = mappedSector(path.join(tree, 'bundle', 'image.bmap'), 200000 * 512);
	fs.writeFileSync(rules, `[inject-error]\nevent = "write_aio"\nerrno = "5"\nsector = "${sector}"\nonce = "off"\n`);
	return { usb: stick('STICK', tree), rules };
}

t(
	'a failure after the point of no return with on-failure=shell (allowed by the baked policy): a working shell on the console, the log beside it',
	async () => {
		const disk = oldDiskCopy();
		const { usb, rules } = ioErrorSetup();
		const config = vmConfig({ allowShell: true });
		// The arithmetic is done by the shell: the typed text itself shows $((6*7)), only its output shows 42.
		const typed = 'echo "SHELL-$((6*7))"; grep -q "point of no return" /run/initramfs/reimage.log && echo "LOG-$((2*2))"; poweroff -f\n';
		// arm with this policy leaves out the shell lockdown, as the initrd built with it does.
		const vm = await bootUntil(
			`${await armedArgs('auto', 'LABEL=STICK:/bundle', 'serial:KIOSK42', config)} rd.reimage.on-failure=shell`,
			[
				{ file: disk, serial: 'KIOSK42', blkdebug: rules },
				{ file: usb, serial: 'STICK1', usb: true },
			],
			() => false,
			{
				configDir: config,
				answer: { cue: 'Starting a shell.', text: typed, quietMs: 2000 },
			},
		);
		assert.not.ok(vm.killed, 'the VM powered off from the shell');
		assert.match(vm.serial, /reimage: FAILED after the point of no return \(exit 10\)\. The disk will not boot\./);
		assert.match(vm.serial, /SHELL-42/);
		assert.match(vm.serial, /LOG-4/, `the log in /run/initramfs names the failure:\n${vm.serial.slice(-1500)}`);
		assertUnbootable(disk);
	},
);

/** The first 512-byte sector at or after byte AT that the block map maps. */
function mappedSector(bmap: string, at: number): number {
	for (const m of fs.readFileSync(bmap, 'utf8').matchAll(/<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*<\/Range>/g)) {
		const [first, last] = [Number(m[1]), Number(m[2] ?? m[1])];
		if ((last + 1) * 4096 > at) return Math.max(first * 8, Math.floor(at / 512));
	}
	throw new Error(`${bmap} maps nothing after byte ${at}`);
}

t('a device-mapper device stacked on the target: refused before anything is written (exit 4), the holder named', async () => {
	const disk = oldDiskCopy();
	const usb = stick('STICK', bundleTree());
	const before = sha256File(disk);
	// dracut without systemd runs its hooks in order: break before pre-mount
	// (where reimage runs), stack a linear dm device on the target at the
	// console, and let the boot go on.
	const typed = 'dmsetup create hold --table "0 2048 linear /dev/vda 0" && echo "HOLD-$((1+1))"; exit\n';
	const vm = await bootUntil(
		// The armed arguments keep every emergency path from a shell and make it reboot; this
		// scenario lifts that on the kernel command line (the last value wins over the
		// initrd's baked one) so the break shell is given and, when it exits, the boot goes on.
		ARM.replace('rd.shell=0', 'rd.shell=1 rd.break=pre-mount').replace('rd.emergency=reboot', 'rd.emergency=continue'),
		[
			{ file: disk, serial: 'KIOSK42' },
			{ file: usb, serial: 'STICK1', usb: true },
		],
		() => false,
		{
			noSystemd: true,
			dracutAdd: ['dm'],
			answer: { cue: 'Dropping to debug shell.', text: typed, quietMs: 2000 },
		},
	);
	assert.not.ok(vm.killed, 'the VM rebooted on its own');
	assert.match(vm.serial, /HOLD-2/, 'the dm device was made');
	assert.match(
		vm.serial,
		/target \/dev\/vda is in use \(vda is held by dm-0 \(dmsetup remove hold\)\): unmount or stop what uses it first/,
	);
	assert.match(vm.serial, /nothing was written\. Rebooting into the old system/);
	assert.is(sha256File(disk), before, 'target byte-identical');
});

t('not enough RAM for the image: refused before writing, the VM reboots, the disk is untouched', async () => {
	const disk = oldDiskCopy();
	const before = sha256File(disk);
	// An uncompressed 192 MiB image (+192 MiB runtime headroom and the decoder) does not fit in the ~300 MiB a 740 MiB VM has left once the kernel and the initramfs are in.
	const usb = stick('STICK', bundleTree(undefined, 'none'), 240);
	const vm = await bootUntil(
		ARM,
		[
			{ file: disk, serial: 'KIOSK42' },
			{ file: usb, serial: 'STICK1', usb: true },
		],
		() => false,
		{ memMiB: 740 },
	);
	assert.not.ok(vm.killed, 'the VM rebooted on its own');
	assert.match(vm.serial, /staging needs .* of RAM .* but only .* is available/);
	assert.match(vm.serial, /nothing was written\. Rebooting into the old system/);
	assert.is(sha256File(disk), before);
});

t.run();
