// reimage arm / disarm against a boot directory built in a temp dir: GRUB's
// real grub-editenv, and systemd-boot through a tiny fake bootctl on PATH
// (setting an EFI variable needs real firmware).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reimage } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, exec, mount, partNode, sh, tmpDir, umount } from '../helpers/sys.ts';

const t = suite('arm and disarm');
const KVER = '6.1.0-99-test';

function bootDir(opts: { customCfg?: string; readsCustom?: boolean } = {}): string {
	const boot = path.join(tmpDir('reimage-boot-'), 'boot');
	fs.mkdirSync(path.join(boot, 'grub'), { recursive: true });
	fs.writeFileSync(path.join(boot, `vmlinuz-${KVER}`), 'kernel');
	fs.writeFileSync(
		path.join(boot, 'grub/grub.cfg'),
		opts.readsCustom === false
			? 'menuentry x {}\n'
			: '### BEGIN /etc/grub.d/41_custom ###\nif [ -f  ${config_directory}/custom.cfg ]; then\n  source ${config_directory}/custom.cfg\nfi\n',
	);
	if (opts.customCfg) fs.writeFileSync(path.join(boot, 'grub/custom.cfg'), opts.customCfg);
	sh('grub-editenv', [path.join(boot, 'grub/grubenv'), 'create']);
	return boot;
}

const initrdFile = () => {
	const f = path.join(tmpDir('reimage-initrd-'), 'initrd.img');
	fs.writeFileSync(f, 'initrd bytes');
	return f;
};
const env = (boot: string) => sh('grub-editenv', [path.join(boot, 'grub/grubenv'), 'list']);
const armArgs = (boot: string) => [
	'arm',
	'--bundle',
	'LABEL=REIMAGE:/bundle',
	'--target',
	'serial:KIOSK42',
	'--initrd',
	initrdFile(),
	'--kver',
	KVER,
	'--boot-dir',
	boot,
];

t(
	"GRUB: two entries in custom.cfg, a try counter (reimage_tries=3) that makes the armed entry the default, the initrd in /boot; the admin's own custom.cfg kept; grub-script-check accepts it",
	() => {
		const boot = bootDir({ customCfg: 'menuentry "Admin entry" {}\n' });
		const r = reimage(armArgs(boot));
		assert.is(r.status, 0, describe(r));
		const cfg = fs.readFileSync(path.join(boot, 'grub/custom.cfg'), 'utf8');
		assert.match(cfg, /^menuentry "Admin entry" \{\}\n/);
		assert.match(cfg, /menuentry 'Reimage this machine NOW - REPLACES EVERYTHING ON THE DISK' --id reimage-armed \{/);
		assert.match(cfg, /--id reimage-interactive/);
		assert.match(
			cfg,
			new RegExp(
				`linux \\S*/vmlinuz-${KVER} rd\\.reimage rd\\.reimage\\.bundle=LABEL=REIMAGE:/bundle rd\\.reimage\\.target=serial:KIOSK42 rd\\.reimage\\.mode=auto`,
			),
		);
		assert.match(cfg, /rd\.reimage\.mode=interactive/);
		assert.match(cfg, new RegExp(`initrd \\S*/reimage-initrd-${KVER}\\.img`));
		assert.match(env(boot), /^reimage_tries=3$/m);
		assert.not.match(env(boot), /next_entry/);
		// Each boot that reads the menu uses one try and makes the armed entry the default while one was left.
		assert.match(cfg, /load_env -f "\$\{reimage_env\}" reimage_tries\n/);
		assert.match(cfg, /if \[ "\$\{reimage_tries\}" = 1 \]; then set reimage_next=0; fi\n/);
		assert.match(
			cfg,
			// The armed entry becomes the default only when the lower count was saved (a counter that cannot go down never holds the machine).
			/if \[ -n "\$\{reimage_next\}" \]; then\n\tset reimage_tries="\$\{reimage_next\}"\n\tif save_env -f "\$\{reimage_env\}" reimage_tries; then set default=reimage-armed; fi\nfi\n/,
		);
		// Our block alone (the admin's empty entry is not GRUB syntax).
		const ours = path.join(tmpDir('reimage-grubcheck-'), 'block.cfg');
		fs.writeFileSync(ours, cfg.slice(cfg.indexOf('### BEGIN reimage')));
		sh('grub-script-check', [ours]);
		assert.match(r.stdout, /is the default of the next 3 boots/);
		assert.is(fs.readFileSync(path.join(boot, `reimage-initrd-${KVER}.img`), 'utf8'), 'initrd bytes');
		// Arming again replaces the block instead of adding a second one.
		assert.is(reimage(armArgs(boot)).status, 0);
		assert.is(fs.readFileSync(path.join(boot, 'grub/custom.cfg'), 'utf8').split('--id reimage-armed').length, 2);
	},
);

t(
	"GRUB: a target found on this machine that is not the disk holding /boot/grub (here: this machine's root disk, /boot on a loop disk) gets the one-shot next_entry (a success there would not end a counter)",
	() => {
		// Loop disks are never targets: the target is this machine's root disk, selected by its exact size.
		const rootDev = sh('findmnt', ['-n', '-o', 'SOURCE', '/']).trim();
		const parent = exec('lsblk', ['-n', '-d', '-o', 'PKNAME', rootDev]).stdout.trim();
		const rootDisk = parent ? `/dev/${parent}` : rootDev;
		const bytes = exec('lsblk', ['-b', '-d', '-n', '-o', 'SIZE', rootDisk]).stdout.trim();
		if (!/^\d+$/.test(bytes)) {
			console.log(`  (skipped: the root file system ${rootDev} is on no disk this test can name)`);
			return;
		}
		const selector = `size:${bytes}-${bytes}`;
		const img = path.join(tmpDir('reimage-arm-disk-'), 'disk.img');
		fs.writeFileSync(img, '');
		fs.truncateSync(img, 40 * 2 ** 20);
		sh('sfdisk', ['-q', img], { input: 'label: gpt\nsize=32M,type=L\n' });
		const bdev = attachLoop(img);
		try {
			sh('mkfs.ext4', ['-q', partNode(bdev, 1)]);
			const root = mount(partNode(bdev, 1), { rw: true });
			try {
				const boot = path.join(root, 'boot');
				fs.cpSync(bootDir(), boot, { recursive: true });
				const r = reimage(armArgs(boot).map((a) => (a === 'serial:KIOSK42' ? selector : a)));
				assert.is(r.status, 0, describe(r));
				assert.match(r.stdout, /is the next boot \(once: the target size:\S+ is not the disk that holds \S+\/boot\/grub/);
				assert.match(env(boot), /^next_entry=reimage-armed$/m);
				assert.not.match(env(boot), /reimage_tries/);
			} finally {
				umount(root);
			}
		} finally {
			detachLoop(bdev);
		}
	},
);

t("GRUB: disarm removes the entries, the try counter (and an older arm's one-shot) and the initrd, and keeps the rest", () => {
	const boot = bootDir({ customCfg: 'menuentry "Admin entry" {}\n' });
	assert.is(reimage(armArgs(boot)).status, 0);
	sh('grub-editenv', [path.join(boot, 'grub/grubenv'), 'set', 'next_entry=reimage-armed']);
	const r = reimage(['disarm', '--boot-dir', boot]);
	assert.is(r.status, 0, describe(r));
	assert.is(fs.readFileSync(path.join(boot, 'grub/custom.cfg'), 'utf8'), 'menuentry "Admin entry" {}\n');
	assert.not.match(env(boot), /next_entry|reimage_tries/);
	assert.not.ok(fs.existsSync(path.join(boot, `reimage-initrd-${KVER}.img`)));
});

t('GRUB: a grub.cfg that does not read custom.cfg is refused (8) and nothing is changed', () => {
	const boot = bootDir({ readsCustom: false });
	const r = reimage(armArgs(boot));
	assert.is(r.status, 8, describe(r));
	assert.match(r.stderr, /does not read custom\.cfg .*run update-grub/);
	assert.not.ok(fs.existsSync(path.join(boot, 'grub/custom.cfg')));
	assert.not.match(env(boot), /next_entry|reimage_tries/);
});

t('bad selectors and locations are refused before anything is installed', () => {
	const boot = bootDir();
	const r = reimage([
		'arm',
		'--bundle',
		'LABEL=REIMAGE:/bundle',
		'--target',
		'/dev/sda',
		'--initrd',
		initrdFile(),
		'--kver',
		KVER,
		'--boot-dir',
		boot,
	]);
	assert.is(r.status, 2, describe(r));
	assert.match(r.stderr, /kernel device name/);
	assert.not.ok(fs.existsSync(path.join(boot, 'grub/custom.cfg')));
});

t('systemd-boot: BLS entries and kernel+initrd on the ESP, bootctl set-oneshot; disarm undoes it', () => {
	const boot = bootDir();
	const esp = tmpDir('reimage-esp-');
	fs.mkdirSync(path.join(esp, 'loader'));
	const bin = tmpDir('reimage-fakebin-');
	const calls = path.join(bin, 'calls');
	fs.writeFileSync(path.join(bin, 'bootctl'), `#!/bin/sh\necho "$*" >> ${calls}\n[ "$1" = --print-esp-path ] && echo ${esp}\nexit 0\n`, {
		mode: 0o755,
	});
	const withFake = { env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } };
	const r = reimage(armArgs(boot), withFake);
	assert.is(r.status, 0, describe(r));
	const entry = fs.readFileSync(path.join(esp, 'loader/entries/reimage-armed.conf'), 'utf8');
	assert.match(entry, /^title Reimage this machine NOW/m);
	assert.match(entry, /^linux \/reimage\/vmlinuz$/m);
	assert.match(
		entry,
		/^options rd\.reimage rd\.reimage\.bundle=LABEL=REIMAGE:\/bundle rd\.reimage\.target=serial:KIOSK42 rd\.reimage\.mode=auto/m,
	);
	assert.ok(fs.existsSync(path.join(esp, 'loader/entries/reimage-interactive.conf')));
	assert.is(fs.readFileSync(path.join(esp, 'reimage/initrd.img'), 'utf8'), 'initrd bytes');
	assert.match(fs.readFileSync(calls, 'utf8'), new RegExp(`--esp-path=${esp} set-oneshot reimage-armed\\.conf`));
	assert.not.ok(fs.existsSync(path.join(boot, 'grub/custom.cfg')), 'GRUB left alone');
	assert.is(reimage(['disarm', '--boot-dir', boot], withFake).status, 0);
	assert.not.ok(fs.existsSync(path.join(esp, 'loader/entries/reimage-armed.conf')));
	assert.not.ok(fs.existsSync(path.join(esp, 'reimage')));
	assert.match(fs.readFileSync(calls, 'utf8'), /set-oneshot $/m);
});

t('both entries keep dracut and initramfs-tools from giving a root shell, unless the baked policy allows shells', () => {
	const linux = (boot: string) =>
		fs
			.readFileSync(path.join(boot, 'grub/custom.cfg'), 'utf8')
			.split('\n')
			.filter((l) => /^\s*linux /.test(l));
	const locked = bootDir();
	const r = reimage(armArgs(locked));
	assert.is(r.status, 0, describe(r));
	const lines = linux(locked);
	assert.is(lines.length, 2);
	for (const l of lines) assert.match(l, / rd\.reimage\.mode=(auto|interactive) rd\.shell=0 rd\.emergency=reboot panic=10( |$)/);
	const config = tmpDir('reimage-armcfg-');
	fs.writeFileSync(path.join(config, 'config.json'), '{ "allowShell": true }\n');
	const open = bootDir();
	const o = reimage([...armArgs(open), '--config', config]);
	assert.is(o.status, 0, describe(o));
	for (const l of linux(open)) assert.not.match(l, /rd\.shell|rd\.emergency|panic=/);
	fs.writeFileSync(path.join(config, 'config.json'), '{ "allowShell": "yes" }\n');
	const bad = reimage([...armArgs(bootDir()), '--config', config]);
	assert.is(bad.status, 2, describe(bad));
});

t.run();
