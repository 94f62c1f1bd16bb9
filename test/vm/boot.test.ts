// The whole flow in a VM: a real Debian kernel, the real dracut-built reimage
// initrd, QEMU (TCG). Each scenario is asserted from the serial log and by
// inspecting the disk on the host afterwards.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import { startNginx } from '../helpers/web.ts';
import * as assert from 'uvu/assert';
import { BIN, pack, readManifest, reimage } from '../helpers/reimage.ts';
import {
	appendPartition,
	armedArgs,
	bootUntil,
	bootVm,
	bundleTree,
	initrd,
	inspectDisk,
	oldDiskCopy,
	sha256File,
	stick,
	vmConfig,
	vmKey,
} from '../helpers/vm.ts';
import { attachLoop, describe, detachLoop, flipBytes, getAcl, mount, partNode, sfdiskJson, sh, umount } from '../helpers/sys.ts';
import { fixtures, writeList } from '../helpers/fixtures.ts';
import { checkResult } from '../helpers/schema.ts';

const t = suite('vm: reimage initrd in QEMU');

// Look inside the reimaged disk on the host.

const newTable = () => sfdiskJson(fixtures().newImg).partitions.map((p) => [p.start, p.size, p.uuid]);
const diskTable = (img: string) => sfdiskJson(img).partitions.map((p) => [p.start, p.size, p.uuid]);

t('the binary inside the initrd is byte-identical to the build and is not executable there (so dracut cannot strip it)', () => {
	const img = initrd();
	const listing = sh('lsinitrd', [img]);
	assert.match(listing, /-rw-r--r-- .* usr\/lib\/reimage\/reimage\n/);
	assert.match(listing, /usr\/lib\/systemd\/system\/initrd\.target\.wants\/reimage\.service/);
	// The shell lockdown is baked in (dracut reads /etc/cmdline.d like the kernel command line).
	assert.is(sh('lsinitrd', ['--file', 'etc/cmdline.d/50reimage-lockdown.conf', img]).trim(), 'rd.shell=0 rd.emergency=reboot panic=10');
	const copy = path.join(fs.mkdtempSync('/tmp/reimage-lsinitrd-'), 'reimage');
	sh('sh', ['-c', 'lsinitrd --file usr/lib/reimage/reimage "$1" > "$2"', 'sh', img, copy]);
	assert.is(sha256File(copy), sha256File(BIN));
	fs.rmSync(path.dirname(copy), { recursive: true });
});

t('1: bundle on a partition of the very disk being reimaged (kiosk case)', async () => {
	const disk = oldDiskCopy();
	appendPartition(disk, 'REIMAGE', bundleTree(), 120);
	const vm = await bootVm(await armedArgs('auto', 'LABEL=REIMAGE:/bundle', 'serial:KIOSK42'), [{ file: disk, serial: 'KIOSK42' }]);
	assert.match(vm.serial, /copy the bundle from \/dev\/vda3 into RAM/);
	assert.match(vm.serial, /reimage: target \/dev\/vda \(serial KIOSK42\)/);
	assert.match(vm.serial, /point of no return: replacing everything on \/dev\/vda/);
	assert.match(vm.serial, /reimaged \/dev\/vda \(no model, serial KIOSK42\) with 192 MiB .* sha256 ok, 19\/19 entries restored/);
	assert.match(vm.serial, /reimage: done; rebooting into the new system/);
	// The image's table, and the bundle's partition kept after it (a bundle on the target keeps its partition).
	assert.equal(diskTable(disk).slice(0, newTable().length), newTable());
	inspectDisk(disk, (root, data) => {
		assert.match(fs.readFileSync(path.join(root, 'etc/os-release'), 'utf8'), /NEW_IMAGE=1/);
		assert.is(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8').trim(), 'kiosk-old-42');
		const share = fs.statSync(path.join(root, 'srv/share'));
		assert.is(share.uid, 1002, 'kiosk mapped by name to the new image uid');
		assert.is((share.mode & 0o7777).toString(8), '2775');
		assert.is(fs.statSync(path.join(data, 'config')).uid, 1002);
		assert.ok(
			getAcl(path.join(root, 'etc/ssl/private/site.key')).some((l) => /^user:1002:r--/.test(l)),
			'ACL entry mapped by name',
		);
		const report = JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8'));
		assert.is(report.outcome, 'success');
		assert.is(report.device.serial, 'KIOSK42');
		assert.ok(fs.readFileSync(path.join(root, 'var/log/reimage/reimage.log'), 'utf8').includes('point of no return'));
	});
});

t('2: bundle on a USB stick, target chosen by serial among two disks in swapped order', async () => {
	const disk = oldDiskCopy();
	const decoy = oldDiskCopy();
	const before = sha256File(decoy);
	const usb = stick('STICK', bundleTree());
	const vm = await bootVm(await armedArgs('auto', 'LABEL=STICK:/bundle/manifest.json', 'serial:KIOSK42'), [
		{ file: decoy, serial: 'DECOY7' },
		{ file: disk, serial: 'KIOSK42' },
		{ file: usb, serial: 'STICK1', usb: true },
	]);
	assert.match(vm.serial, /reimage: target \/dev\/vdb \(serial KIOSK42\)/);
	assert.match(vm.serial, /reimage: done; rebooting into the new system/);
	// The start-up measurement the README reports (printed, never asserted on time).
	const startup = /reimage \S+: first output (\d+) ms after exec/.exec(vm.serial);
	assert.ok(startup, 'the binary reports its start-up time');
	console.log(`    start-up in the initramfs (TCG): ${startup![1]} ms from exec to first output`);
	assert.match(vm.serial, /every byte checked \(block map, decoded on every core\)/);
	assert.equal(diskTable(disk), newTable());
	assert.is(sha256File(decoy), before, 'the other disk is untouched');
	// The stick is written only to keep the retained set through the write; it is gone after success.
	const stickDev = attachLoop(usb);
	try {
		const m = mount(partNode(stickDev, 1));
		const left = fs.readdirSync(path.join(m, 'bundle'));
		umount(m);
		assert.not.ok(left.includes('reimage-retained'), 'the saved set is removed from the stick after success');
	} finally {
		detachLoop(stickDev);
	}
	inspectDisk(disk, (root) => {
		assert.is(JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')).outcome, 'success');
	});
});

t('3: a signed bundle whose image was altered (its hash no longer matches): nothing written, the VM reboots on its own', async () => {
	const disk = oldDiskCopy();
	const usb = stick(
		'STICK',
		// The manifest and its signature stay intact; the image bytes do not.
		bundleTree((b) => {
			const image = path.join(b, readManifest(b).image.file);
			flipBytes(image, Math.floor(fs.statSync(image).size / 2));
		}),
	);
	const before = sha256File(disk);
	const vm = await bootVm(await armedArgs('auto', 'LABEL=STICK:/bundle', 'serial:KIOSK42'), [
		{ file: disk, serial: 'KIOSK42' },
		{ file: usb, serial: 'STICK1', usb: true },
	]);
	// Checked while it is copied into RAM (sources/bring.ts), before the flow starts.
	assert.match(
		vm.serial,
		/bundle file .*image\.raw\.zst is \d+ bytes with sha256 [0-9a-f]{64} but the manifest says \d+ bytes with sha256 [0-9a-f]{64}/,
	);
	assert.match(vm.serial, /nothing was written\. Rebooting into the old system/);
	assert.not.match(vm.serial, /point of no return/);
	assert.is(sha256File(disk), before, 'target byte-identical');
});

t('3b: an unsigned bundle against an initrd with a baked key: refused before anything is written, the VM reboots on its own', async () => {
	const disk = oldDiskCopy();
	const usb = stick('STICK', bundleTree(undefined, 'zstd', false));
	const before = sha256File(disk);
	const vm = await bootVm(await armedArgs('auto', 'LABEL=STICK:/bundle', 'serial:KIOSK42'), [
		{ file: disk, serial: 'KIOSK42' },
		{ file: usb, serial: 'STICK1', usb: true },
	]);
	assert.match(vm.serial, /reimage: bundles must be signed by [0-9a-f]{16}/);
	assert.match(vm.serial, /is not signed but this system trusts only signed bundles/);
	assert.match(vm.serial, /nothing was written\. Rebooting into the old system/);
	assert.not.match(vm.serial, /point of no return/);
	assert.is(sha256File(disk), before, 'target byte-identical');
});

// Scenarios 4 and 5 are not armed entries (no rd.reimage; plan mode with a root=): hand-written arguments.
t('4: without rd.reimage the module does nothing and the boot goes on', async () => {
	const disk = oldDiskCopy();
	const before = sha256File(disk);
	const vm = await bootVm('root=LABEL=nonexistent rd.timeout=20 rd.shell=0 rd.emergency=poweroff', [{ file: disk, serial: 'KIOSK42' }]);
	assert.match(vm.serial, /Timed out waiting for device .*nonexistent/, 'the boot went on to look for the root file system');
	assert.not.match(vm.serial, /reimage:/);
	assert.not.match(vm.serial, /Starting .*reimage\.service/);
	assert.is(sha256File(disk), before);
});

t('5: plan mode (rd.reimage.mode=plan): every check runs, the plan is printed, nothing is written, the boot goes on', async () => {
	const disk = oldDiskCopy();
	const usb = stick('STICK', bundleTree());
	const before = sha256File(disk);
	const vm = await bootVm(
		'rd.reimage rd.reimage.mode=plan rd.reimage.bundle=LABEL=STICK:/bundle rd.reimage.target=serial:KIOSK42 root=LABEL=nonexistent rd.timeout=20 rd.shell=0 rd.emergency=poweroff',
		[
			{ file: disk, serial: 'KIOSK42' },
			{ file: usb, serial: 'STICK1', usb: true },
		],
	);
	assert.match(
		vm.serial,
		/plan: \/dev\/vda \(.*serial KIOSK42.*\) would be replaced by 192 MiB image, keeping 19 entries; nothing was written/,
	);
	assert.not.match(vm.serial, /point of no return/);
	assert.match(vm.serial, /Timed out waiting for device .*nonexistent/, 'the boot went on to look for the root file system');
	assert.is(sha256File(disk), before, 'target byte-identical');
});

for (const [answer, outcome] of [
	['no', 'nothing is written and the old system boots again'],
	['yes', 'the disk is reimaged'],
] as const) {
	t(`6: interactive mode: the console shows the disk and asks; "${answer}" typed at it: ${outcome}`, async () => {
		const disk = oldDiskCopy();
		const usb = stick('STICK', bundleTree());
		const before = sha256File(disk);
		const vm = await bootVm(
			await armedArgs('interactive', 'LABEL=STICK:/bundle', 'serial:KIOSK42'),
			[
				{ file: disk, serial: 'KIOSK42' },
				{ file: usb, serial: 'STICK1', usb: true },
			],
			{ answer: { cue: 'Type "yes" to continue: ', text: `${answer}\n`, quietMs: 2000 } },
		);
		assert.match(
			vm.serial,
			/EVERYTHING on \/dev\/vda \(.*serial KIOSK42.*\) will be destroyed and replaced\.\s+Partitions now on it:\s+\/dev\/vda1\s+ext4/,
		);
		if (answer === 'no') {
			assert.match(vm.serial, /not confirmed: nothing was written to \/dev\/vda/, `no refusal on the console:\n${vm.serial.slice(-2500)}`);
			assert.not.match(vm.serial, /point of no return/);
			assert.is(sha256File(disk), before, 'target byte-identical');
		} else {
			assert.match(
				vm.serial,
				/reimaged \/dev\/vda .* sha256 ok, 19\/19 entries restored/,
				`no success on the console:\n${vm.serial.slice(-2500)}`,
			);
			assert.equal(diskTable(disk), newTable());
		}
	});
}

// What a shell on the console looks like, from dracut, systemd's sulogin, initramfs-tools or a bare sh.
const SHELL = /Entering emergency mode|Give root password|Press Enter for maintenance|\(initramfs\) |dracut:\/#|^sh-[\d.]+# /m;

t('7: ^C at the console while an armed run waits for its bundle: the binary dies, the machine reboots, no shell', async () => {
	const disk = oldDiskCopy();
	const before = sha256File(disk);
	const args = await armedArgs('auto', 'LABEL=NOSUCHSTICK:/bundle', 'serial:KIOSK42');
	assert.match(args, / rd\.shell=0 rd\.emergency=reboot panic=10( |$)/, 'arm locks the shells down');
	// A shell prompt (or the old glue's halt) ends the boot early; a reboot ends it by itself.
	const vm = await bootUntil(args, [{ file: disk, serial: 'KIOSK42' }], (s) => SHELL.test(s) || /Halted\.|stopping to be safe/.test(s), {
		answer: { cue: 'waiting for the bundle device', text: '\x03' },
	});
	assert.ok(
		vm.serial.includes(args),
		`the VM booted the arguments arm writes (${args}):\n${vm.serial.slice(0, 1500)}\n…\n${vm.serial.slice(-1500)}`,
	);
	assert.not.match(vm.serial, SHELL, 'a shell was offered on the console');
	assert.not.ok(vm.killed, `the VM did not reboot by itself:\n${vm.serial.slice(-2000)}`);
	assert.match(vm.serial, /reimage: signal received; waiting for the binary/, 'the ^C reached the run and the glue survived it');
	assert.match(vm.serial, /reimage: failed before writing \(exit \d+\); nothing was written\. Rebooting into the old system/);
	assert.is(sha256File(disk), before, 'target byte-identical');
});

t('dracut without systemd (reimage initrd --no-systemd): the pre-mount hook runs the same flow', async () => {
	const listing = sh('lsinitrd', [initrd({ noSystemd: true })]);
	assert.match(listing, /hooks\/pre-mount\/50-reimage-hook\.sh/);
	assert.not.match(listing, /reimage\.service|bin\/systemd\b/);
	const disk = oldDiskCopy();
	const usb = stick('STICK', bundleTree());
	const vm = await bootVm(
		await armedArgs('auto', 'LABEL=STICK:/bundle', 'serial:KIOSK42'),
		[
			{ file: disk, serial: 'KIOSK42' },
			{ file: usb, serial: 'STICK1', usb: true },
		],
		{ noSystemd: true },
	);
	assert.match(vm.serial, /reimaged \/dev\/vda .* sha256 ok, 19\/19 entries restored/);
	assert.match(vm.serial, /reimage: done; rebooting into the new system/);
	assert.equal(diskTable(disk), newTable());
});

t(
	'initramfs-tools, network initrd: configure_networking (baked IP=dhcp), the bundle by URL from nginx on the host, the same flow',
	async () => {
		const disk = oldDiskCopy();
		const web = await startNginx(bundleTree());
		try {
			const configDir = vmConfig({ network: true });
			const spec = { generator: 'initramfs-tools', configDir } as const;
			const unpacked = fs.mkdtempSync('/tmp/reimage-unmkinitramfs-');
			sh('unmkinitramfs', [initrd(spec), unpacked]);
			const conf = (name: string) =>
				sh('find', [unpacked, '-path', `*/conf/conf.d/${name}`])
					.trim()
					.split('\n')[0]!;
			assert.is(
				fs.readFileSync(conf('reimage-lockdown'), 'utf8'),
				'panic=10\n',
				'initramfs-tools panic() reboots instead of starting a shell',
			);
			assert.is(fs.readFileSync(conf('reimage-network'), 'utf8'), 'IP=dhcp\n');
			assert.ok(sh('find', [unpacked, '-name', 'ipconfig']).trim(), "klibc's ipconfig is in the initrd");
			assert.ok(sh('find', [unpacked, '-name', 'virtio_net.ko*']).trim(), 'the NIC driver is in the initrd');
			fs.rmSync(unpacked, { recursive: true });
			const append = await armedArgs('auto', `http://10.0.2.2:${web.port}/bundle/`, 'serial:KIOSK42', configDir);
			const vm = await bootVm(append, [{ file: disk, serial: 'KIOSK42' }], { ...spec, net: true });
			assert.match(vm.serial, /IP-Config: .* complete/);
			assert.match(vm.serial, /copy the bundle from http:\/\/10\.0\.2\.2:\d+\/bundle\/ into RAM/);
			assert.match(
				vm.serial,
				/reimaged \/dev\/vda .* sha256 ok, 19\/19 entries restored/,
				`no success on the console:\n${vm.serial.slice(-2500)}`,
			);
			assert.match(vm.serial, /reimage: done; rebooting into the new system/);
			assert.equal(diskTable(disk), newTable());
			inspectDisk(disk, (root, data) => {
				assert.is(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8').trim(), 'kiosk-old-42');
				assert.is(fs.statSync(path.join(data, 'config')).uid, 1002);
				assert.is(JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')).outcome, 'success');
			});
		} finally {
			await web.stop();
		}
	},
);

t('vm-test: the reimage succeeds but the result does not boot (no boot loader): FAIL, exit 12, naming the marker', () => {
	// (A result that boots is proved on real Debian images in images.test.ts.)
	const disk = fixtures().oldImg;
	const before = sha256File(disk);
	const b = pack('zstd', { retain: fixtures().list, sign: vmKey().key });
	const r = reimage(['vm-test', '--disk', disk, '--bundle', b, '--initrd', initrd(), '--boot-timeout', '30', '--json']);
	assert.is(r.status, 12, describe(r));
	const v = checkResult(r.stdout) as Record<string, any>;
	assert.is(v.pass, false);
	assert.is(v.report.outcome, 'success', 'the reimage itself worked');
	assert.is(v.report.entries.filter((e: { outcome: string }) => e.outcome === 'restored').length, 19);
	// SeaBIOS finds nothing to boot: QEMU ends, or the boot times out (both: the marker never came).
	assert.ok(['stopped', 'timeout'].includes(v.boot.outcome), v.boot.outcome);
	assert.match(
		v.error.message,
		/^vm-test failed: the reimaged disk (stopped after [\d.]+ s without printing|did not print) the marker \/Reached target.*\/ (within 30 s )?\(BIOS \(SeaBIOS\)/,
	);
	assert.is(sha256File(disk), before, "the user's disk image itself is never changed");
});

t('vm-test: a bundle whose retention list cannot be met fails (exit 12) with the reason', () => {
	const b = pack('zstd', { retain: writeList(['/etc/machine-id', '/etc/not-on-this-machine']), sign: vmKey().key });
	const r = reimage(['vm-test', '--disk', fixtures().oldImg, '--bundle', b, '--initrd', initrd()]);
	assert.is(r.status, 12, describe(r));
	assert.match(r.stdout, /vm-test FAIL: .*required retained entry \/etc\/not-on-this-machine/);
});

t.run();
