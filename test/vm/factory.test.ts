// The OEM factory reset in QEMU (issue 14's proof): a real Debian system disk
// (GPT, SeaBIOS, GRUB) with a /home partition and a recovery partition is
// captured on the host; the system is then changed and files put in /home;
// the reset is chosen the way a running system chooses it (GRUB's one-shot
// next_entry in /boot/grub/grubenv, what grub-reboot writes), the disk booted
// by the firmware alone, the confirmation answered at the serial console;
// the result is booted and its marker read, /home and the recovery partition
// checked on the host; then the same again (the second reset, checked on the host).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reimage } from '../helpers/reimage.ts';
import { bootVm, initrd, kernel, vmConfig, vmKey } from '../helpers/vm.ts';
import { attachLoop, copySparse, describe, detachLoop, mount, partNode, sfdiskJson, sh, tmpDir, umount } from '../helpers/sys.ts';
import { debianDisk, identityOf } from '../helpers/images.ts';
import { createHash } from 'node:crypto';

const t = suite('vm: factory reset from the recovery partition (capture, reset twice)');

const MiB = 2 ** 20;
const RECOVERY_TYPE = '8ec7b804-ecd7-438d-a301-c3117601ae5d';
const HOME_TYPE = '933AC7E1-2EB4-4F13-B844-0E14E2AEF915';
// What grub-mkconfig's 00_header writes so that grub-reboot's one-shot entry
// is honoured (the test image's grub.cfg is hand-made); insmod: its GRUB runs
// grub.cfg nested (configfile from the early config), without command autoloading.
const GRUBENV_HEADER = `insmod loadenv
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "\${next_entry}" ] ; then
  set default="\${next_entry}"
  set next_entry=
  save_env next_entry
else
  set default="0"
fi
`;

// The reference disk: the v1 Debian disk grown by a /home partition (in its
// fstab) and an empty recovery partition of the documented type and name.
function referenceDisk(): string {
	const img = path.join(tmpDir('reimage-factory-vm-'), 'disk.img');
	copySparse(debianDisk({ firmware: 'bios' }, 1), img);
	fs.truncateSync(img, fs.statSync(img).size + (64 + 640 + 2) * MiB);
	sh('sfdisk', ['-q', '--relocate', 'gpt-bak-std', img]);
	sh('sfdisk', ['-q', '--append', img], {
		input: `size=64M,type=${HOME_TYPE},name=home\nsize=640M,type=${RECOVERY_TYPE},name=reimage-recovery\n`,
	});
	const home = tmpDir('reimage-home-');
	fs.mkdirSync(path.join(home, 'kiosk'));
	fs.writeFileSync(path.join(home, 'kiosk/user.txt'), 'user data\n');
	const p = sfdiskJson(img).partitions[2];
	if (!p) throw new Error(`${img}: no partition 3`);
	sh('mkfs.ext4', ['-q', '-L', 'home', '-d', home, '-E', `offset=${p.start * 512}`, img, `${p.size / 2}k`]);
	withRoot(img, (root) => {
		fs.appendFileSync(path.join(root, 'etc/fstab'), 'PARTLABEL=home /home ext4 defaults 0 2\n');
		const cfg = path.join(root, 'boot/grub/grub.cfg');
		fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace('set timeout=0\n', `set timeout=0\n${GRUBENV_HEADER}`));
		sh('grub-editenv', [path.join(root, 'boot/grub/grubenv'), 'create']);
	});
	return img;
}

// FN with partition N of IMG mounted read-write.
function withPart<T>(img: string, n: number, fn: (dir: string) => T): T {
	const dev = attachLoop(img);
	try {
		const dir = mount(partNode(dev, n), { rw: true });
		try {
			return fn(dir);
		} finally {
			umount(dir);
		}
	} finally {
		detachLoop(dev);
	}
}
const withRoot = <T>(img: string, fn: (dir: string) => T) => withPart(img, 2, fn);

// The recovery file system's contents: each path with the sha256 of its bytes (directories as '/').
function recoveryFiles(img: string): Record<string, string> {
	const dev = attachLoop(img);
	try {
		const dir = mount(partNode(dev, 4));
		try {
			const out: Record<string, string> = {};
			const walk = (rel: string) => {
				for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
					const r = path.join(rel, e.name);
					if (e.isDirectory()) {
						out[r] = '/';
						walk(r);
					} else
						out[r] = createHash('sha256')
							.update(fs.readFileSync(path.join(dir, r)))
							.digest('hex');
				}
			};
			walk('');
			return out;
		} finally {
			umount(dir);
		}
	} finally {
		detachLoop(dev);
	}
}

t(
	'capture on the host; change the system and /home; reset from the boot entry (grubenv next_entry), twice: factory state, /home and recovery intact',
	async () => {
		const t0 = Date.now();
		const img = referenceDisk();
		const config = vmConfig({ noRetain: true });
		const rd = initrd({ configDir: config });
		// The factory state is the v1 image's (identityOf reads the last partition: the image itself, not the grown disk).
		const factoryId = identityOf(debianDisk({ firmware: 'bios' }, 1));
		const dev = attachLoop(img);
		try {
			const r = reimage([
				'capture',
				'--disk',
				dev,
				'--key',
				vmKey().key,
				'--keep',
				'PARTLABEL=home',
				'--recovery',
				'--kernel',
				kernel().vmlinuz,
				'--initrd',
				rd,
				'--config',
				config,
			]);
			assert.is(r.status, 0, describe(r));
		} finally {
			detachLoop(dev);
		}
		const recovery = recoveryFiles(img);
		const table = sfdiskJson(img).partitions.map((p) => [p.start, p.size, p.uuid, p.name]);
		const timings: string[] = [`prepare+capture ${((Date.now() - t0) / 1000).toFixed(0)} s`];
		for (const round of [1, 2]) {
			// The user changes the system (a new machine-id, a file) and puts a file in /home; the reset is chosen for the next boot.
			withRoot(img, (root) => {
				fs.writeFileSync(path.join(root, 'etc/machine-id'), `changed-by-user-${round}\n`);
				fs.writeFileSync(path.join(root, 'etc/changed'), `round ${round}\n`);
				sh('grub-editenv', [path.join(root, 'boot/grub/grubenv'), 'set', 'next_entry=reimage-factory']);
			});
			withPart(img, 3, (home) => fs.writeFileSync(path.join(home, `kiosk/mine-${round}.txt`), `round ${round}\n`));
			const t1 = Date.now();
			const reset = await bootVm('', [{ file: img, serial: 'FACTORY1' }], {
				firmware: {},
				memMiB: 2048,
				// Typed once the console is quiet: text typed before the prompt has set up the terminal is flushed (seen under load: the run waited forever).
				answer: { cue: 'Type "yes" to continue: ', text: 'yes\n', quietMs: 2000 },
			});
			const s = reset.serial;
			assert.match(s, /FACTORY RESET of \/dev\/vda/, s.slice(-3000));
			assert.match(s, /LOST \(everything on them is replaced\): [^\n]*\/dev\/vda2/);
			assert.match(s, /KEPT as they are, never written: [^\n]*\/dev\/vda3 \(home\)[^\n]*\/dev\/vda4 \(reimage-recovery\)/);
			assert.match(s, /reimage: done; rebooting into the new system/, s.slice(-3000));
			const t2 = Date.now();
			// The reset's result is booted once (round 1); round 2 is checked on the host only (the budget: each TCG boot is a minute).
			if (round === 1) {
				const boot = await bootVm('', [{ file: img, serial: 'FACTORY1' }], { firmware: {} });
				const marker = boot.serial.split(/\r?\n/).find((l) => l.startsWith('REIMAGE-TEST-MARKER'));
				assert.ok(marker, `the factory system booted and printed its marker\n${boot.serial.slice(-3000)}`);
				assert.match(
					marker,
					new RegExp(`^REIMAGE-TEST-MARKER version=1 machine-id=${factoryId['/etc/machine-id']} `),
					"the factory machine-id, not the user's",
				);
			}
			timings.push(
				`reset ${round} ${((t2 - t1) / 1000).toFixed(0)} s${round === 1 ? ` + boot ${((Date.now() - t2) / 1000).toFixed(0)} s` : ''}`,
			);
			// On the host: the change is gone, the entry is still there, /home and the recovery partition are as they were.
			withRoot(img, (root) => {
				assert.not.ok(fs.existsSync(path.join(root, 'etc/changed')), `round ${round}: the change is gone`);
				const id = createHash('sha256')
					.update(fs.readFileSync(path.join(root, 'etc/machine-id')))
					.digest('hex');
				assert.is(id, factoryId['/etc/machine-id'], `round ${round}: the factory machine-id`);
				assert.ok(fs.existsSync(path.join(root, 'etc/grub.d/42_reimage_factory')), 'the grub.d script is in the factory system');
				assert.match(fs.readFileSync(path.join(root, 'boot/grub/grub.cfg'), 'utf8'), /--id reimage-factory \{/);
			});
			withPart(img, 3, (home) => {
				assert.is(fs.readFileSync(path.join(home, 'kiosk/user.txt'), 'utf8'), 'user data\n');
				for (let n = 1; n <= round; n++) assert.is(fs.readFileSync(path.join(home, `kiosk/mine-${n}.txt`), 'utf8'), `round ${n}\n`);
			});
			assert.equal(
				recoveryFiles(img),
				recovery,
				`round ${round}: the recovery partition holds the same files, byte for byte, and nothing else`,
			);
			assert.equal(
				sfdiskJson(img).partitions.map((p) => [p.start, p.size, p.uuid, p.name]),
				table,
				'the same layout',
			);
		}
		console.log(`  factory reset in QEMU: ${timings.join(', ')}; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
	},
);

t.run();
