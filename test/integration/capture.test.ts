// reimage capture and the factory reset on real loop devices: a small GPT
// reference disk (root with GRUB's /etc/grub.d and grub.cfg, a data partition
// kept, a recovery partition) captured into its recovery partition, the
// "Restore factory state" grub.d script run through the real grub-mkconfig,
// the system changed and reset twice; and the refusals, each before anything
// is written (the disk byte-identical).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readManifest, reimage } from '../helpers/reimage.ts';
import { checkResult } from '../helpers/schema.ts';
import { describe, exec, makeBlank, partNode, sh, sha256Device, tmpDir, withLoop, withMount } from '../helpers/sys.ts';

const t = suite('capture and factory reset');
const RECOVERY_TYPE = '8ec7b804-ecd7-438d-a301-c3117601ae5d';
const MiB = 1 << 20;

type DiskOpts = { recoveryMiB?: number; recoveryFs?: boolean; rootRandomMiB?: number };

// referenceDisk: a 66 MiB GPT disk image: 1 root (ext4, GRUB files, fstab naming 2 at /data and 4 at /boot/efi), 2 data, 3 reimage-recovery, 4 an "ESP" with loader/.
function referenceDisk(o: DiskOpts = {}): string {
	const dir = tmpDir('reimage-capture-');
	const img = path.join(dir, 'disk.img');
	const rec = o.recoveryMiB ?? 24;
	makeBlank(img, (1 + 24 + 8 + rec + 8 + 1) * MiB);
	sh('sfdisk', ['-q', img], {
		input: `label: gpt\nstart=2048, size=${24 * 2048}, name=root\nsize=${8 * 2048}, name=data\nsize=${rec * 2048}, type=${RECOVERY_TYPE}, name=reimage-recovery\nsize=${8 * 2048}, name=esp\n`,
	});
	const tree = path.join(dir, 'root');
	fs.mkdirSync(path.join(tree, 'etc/grub.d'), { recursive: true });
	fs.mkdirSync(path.join(tree, 'boot/grub'), { recursive: true });
	fs.mkdirSync(path.join(tree, 'data'));
	fs.mkdirSync(path.join(tree, 'boot/efi'));
	fs.writeFileSync(
		path.join(tree, 'etc/fstab'),
		'PARTLABEL=root / ext4 defaults 0 1\nPARTLABEL=data /data ext4 defaults 0 2\nPARTLABEL=esp /boot/efi ext4 defaults 0 2\n',
	);
	fs.writeFileSync(path.join(tree, 'etc/hostname'), 'factory\n');
	fs.writeFileSync(
		path.join(tree, 'boot/grub/grub.cfg'),
		"### BEGIN /etc/grub.d/10_linux ###\nmenuentry 'Debian' {\n\tlinux /vmlinuz root=PARTLABEL=root ro console=ttyS1,57600 quiet\n}\n### END /etc/grub.d/10_linux ###\n",
	);
	if (o.rootRandomMiB) fs.writeFileSync(path.join(tree, 'etc/blob'), randomBytes(o.rootRandomMiB * MiB));
	sh('mkfs.ext4', ['-q', '-L', 'root', '-d', tree, '-E', `offset=${MiB}`, img, '24M']);
	const dataTree = path.join(dir, 'data');
	fs.mkdirSync(dataTree);
	fs.writeFileSync(path.join(dataTree, 'user.txt'), 'user data\n');
	sh('mkfs.ext4', ['-q', '-L', 'data', '-d', dataTree, '-E', `offset=${25 * MiB}`, img, '8M']);
	// The "ESP" with systemd-boot's loader/ (ext4 here: where capture puts the BLS entry is what is tested, not the firmware).
	const esp = path.join(dir, 'esp');
	fs.mkdirSync(path.join(esp, 'loader/entries'), { recursive: true });
	sh('mkfs.ext4', ['-q', '-L', 'esp', '-d', esp, '-E', `offset=${(33 + rec) * MiB}`, img, '8M']);
	if (o.recoveryFs) sh('mkfs.ext4', ['-q', '-L', 'reimage-recovery', '-E', `offset=${33 * MiB}`, img, `${rec}M`]);
	return img;
}

function keys(): { key: string; pub: string } {
	const prefix = path.join(tmpDir('reimage-key-'), 'oem');
	const r = reimage(['keygen', '--out', prefix]);
	assert.is(r.status, 0, describe(r));
	return { key: `${prefix}.key`, pub: `${prefix}.pub` };
}

function bootFiles(): { kernel: string; initrd: string } {
	const d = tmpDir('reimage-bootfiles-');
	fs.writeFileSync(path.join(d, 'vmlinuz'), 'reimage kernel');
	fs.writeFileSync(path.join(d, 'initrd.img'), 'reimage initrd');
	return { kernel: path.join(d, 'vmlinuz'), initrd: path.join(d, 'initrd.img') };
}

const captureArgs = (dev: string, k: { key: string }, b: { kernel: string; initrd: string }) => [
	'capture',
	'--disk',
	dev,
	'--key',
	k.key,
	'--keep',
	'PARTLABEL=data',
	'--recovery',
	'--kernel',
	b.kernel,
	'--initrd',
	b.initrd,
];

// reset: the factory bundle brought off the recovery partition (as the initrd brings it into RAM), then run against the disk.
function reset(dev: string, pub: string): ReturnType<typeof reimage> {
	const bundle = path.join(tmpDir('reimage-factory-'), 'factory');
	exec('partx', ['-u', dev]);
	withMountSync(partNode(dev, 3), (dir) => sh('cp', ['-a', path.join(dir, 'factory'), bundle]));
	// The default unmapped policy (zero): a factory image leaves its holes, the kept partitions, alone.
	return reimage(['run', '--bundle', bundle, '--target', dev, '--trust', pub, '--no-retain', '--yes']);
}

function withMountSync(node: string, fn: (dir: string) => void, rw = false): void {
	const dir = tmpDir('reimage-mnt-');
	sh('mount', ['-o', rw ? 'rw' : 'ro', node, dir]);
	try {
		fn(dir);
	} finally {
		sh('umount', [dir]);
	}
}

t(
	'capture into the recovery partition; the grub.d entry survives grub-mkconfig; reset twice: factory state, data and recovery intact',
	async () => {
		const k = keys();
		const b = bootFiles();
		await withLoop(referenceDisk(), async (dev) => {
			const r = reimage([...captureArgs(dev, k, b), '--json']);
			assert.is(r.status, 0, describe(r));
			const doc = checkResult(r.stdout) as { kept: number[]; loaders: string[]; outcome: string };
			assert.is(doc.outcome, 'success');
			assert.equal(doc.kept.sort(), [2, 3]);
			assert.equal(doc.loaders, ['grub', 'systemd-boot']);
			exec('partx', ['-u', dev]);
			const partuuid = sh('blkid', ['-p', '-s', 'PART_ENTRY_UUID', '-o', 'value', partNode(dev, 3)])
				.trim()
				.toLowerCase();
			let recoverySum = '';
			withMountSync(partNode(dev, 3), (dir) => {
				const m = readManifest(path.join(dir, 'factory')) as unknown as {
					layout: { partitions: { number: number; kept: boolean }[]; sectorSize: number };
				};
				assert.equal(
					m.layout.partitions.map((p) => [p.number, p.kept]),
					[
						[1, false],
						[2, true],
						[3, true],
						[4, false],
					],
				);
				assert.ok(fs.existsSync(path.join(dir, 'factory/manifest.json.sig')));
				assert.is(fs.readFileSync(path.join(dir, 'reimage/vmlinuz'), 'utf8'), 'reimage kernel');
				recoverySum = fs.readFileSync(path.join(dir, 'factory/manifest.json'), 'utf8');
			});
			// The entry is in the reference system: the grub.d script (run by the real grub-mkconfig) and the current grub.cfg.
			const gmk = tmpDir('reimage-gmk-');
			withMountSync(partNode(dev, 1), (dir) => {
				const script = path.join(dir, 'etc/grub.d/42_reimage_factory');
				assert.is(fs.statSync(script).mode & 0o777, 0o755);
				const sc = exec('shellcheck', ['-s', 'sh', script]);
				assert.is(sc.status, 0, describe(sc));
				fs.mkdirSync(path.join(gmk, 'etc/grub.d'), { recursive: true });
				fs.mkdirSync(path.join(gmk, 'etc/default'));
				fs.writeFileSync(path.join(gmk, 'etc/default/grub'), '');
				fs.copyFileSync(script, path.join(gmk, 'etc/grub.d/42_reimage_factory'));
				fs.chmodSync(path.join(gmk, 'etc/grub.d/42_reimage_factory'), 0o755);
				assert.match(fs.readFileSync(path.join(dir, 'boot/grub/grub.cfg'), 'utf8'), /menuentry 'Debian'[\s\S]*--id reimage-factory/);
			});
			// grub-mkconfig with its configuration directory moved to the temp dir (it checks its output with grub-script-check).
			const mkconfig = path.join(gmk, 'grub-mkconfig');
			fs.writeFileSync(mkconfig, fs.readFileSync('/usr/sbin/grub-mkconfig', 'utf8').replace(/^sysconfdir=.*$/m, `sysconfdir="${gmk}/etc"`));
			const g = exec('sh', [mkconfig, '-o', path.join(gmk, 'grub.cfg')]);
			assert.is(g.status, 0, describe(g));
			const cfg = fs.readFileSync(path.join(gmk, 'grub.cfg'), 'utf8');
			assert.match(cfg, /menuentry 'Restore factory state \(asks first\)[^']*' --id reimage-factory \{/);
			assert.match(cfg, /search --no-floppy --fs-uuid --set=root [0-9a-f-]{36}/);
			assert.match(
				cfg,
				new RegExp(
					`linux /reimage/vmlinuz rd\\.reimage rd\\.reimage\\.bundle=PARTUUID=${partuuid}:/factory rd\\.reimage\\.target=partuuid:${partuuid} rd\\.reimage\\.mode=interactive rd\\.shell=0`,
				),
			);
			assert.match(cfg, /initrd \/reimage\/initrd\.img/);
			// The captured system's console (its grub.cfg), never the words of the host that ran capture (its /proc/cmdline).
			const line = cfg.split('\n').find((l) => l.includes('linux /reimage/vmlinuz')) ?? '';
			assert.match(line, / console=ttyS1,57600$/);
			assert.not.match(line, /console=(?!ttyS1,57600)| quiet/);

			for (const round of [1, 2]) {
				// The user changes the system and puts files on the data partition.
				withMountSync(
					partNode(dev, 1),
					(dir) => {
						fs.writeFileSync(path.join(dir, 'etc/changed'), `round ${round}`);
						fs.rmSync(path.join(dir, 'etc/hostname'));
					},
					true,
				);
				withMountSync(partNode(dev, 2), (dir) => fs.writeFileSync(path.join(dir, `mine-${round}.txt`), 'mine'), true);
				const run = reset(dev, k.pub);
				assert.is(run.status, 0, `reset ${round}: ${describe(run)}`);
				exec('partx', ['-u', dev]);
				withMountSync(partNode(dev, 1), (dir) => {
					assert.not.ok(fs.existsSync(path.join(dir, 'etc/changed')), `reset ${round}: the change is gone`);
					assert.is(fs.readFileSync(path.join(dir, 'etc/hostname'), 'utf8'), 'factory\n');
					assert.ok(fs.existsSync(path.join(dir, 'etc/grub.d/42_reimage_factory')), 'the entry survives the reset');
				});
				withMountSync(partNode(dev, 2), (dir) => {
					assert.is(fs.readFileSync(path.join(dir, 'user.txt'), 'utf8'), 'user data\n');
					assert.ok(fs.existsSync(path.join(dir, `mine-${round}.txt`)), `reset ${round}: data partition kept`);
				});
				withMountSync(partNode(dev, 3), (dir) => assert.is(fs.readFileSync(path.join(dir, 'factory/manifest.json'), 'utf8'), recoverySum));
			}
		});
	},
);

t('refused, disk untouched: a mounted reference disk (the mount named)', async () => {
	const k = keys();
	await withLoop(referenceDisk(), async (dev) => {
		const before = await sha256Device(dev);
		await withMount(partNode(dev, 1), async (dir) => {
			const r = reimage(captureArgs(dev, k, bootFiles()));
			assert.is(r.status, 4, describe(r));
			assert.match(r.stderr, new RegExp(`reference disk ${dev} is in use \\(${path.basename(partNode(dev, 1))} is mounted on ${dir}`));
		});
		assert.is(await sha256Device(dev), before);
	});
});

t('refused, disk untouched: a recovery partition too small for the factory image', async () => {
	const k = keys();
	await withLoop(referenceDisk({ recoveryMiB: 8, recoveryFs: true, rootRandomMiB: 10 }), async (dev) => {
		const before = await sha256Device(dev);
		const r = reimage(captureArgs(dev, k, bootFiles()));
		assert.is(r.status, 4, describe(r));
		assert.match(
			r.stderr,
			/recovery partition \S+p3 has \d+ bytes \(.*\) free for the factory image, which needs \d+ bytes .*nothing was written/,
		);
		assert.is(await sha256Device(dev), before);
	});
});

t('reset refused, disk untouched: the layout changed since the capture; the recovery bundle altered', async () => {
	const k = keys();
	await withLoop(referenceDisk(), async (dev) => {
		const out = path.join(tmpDir('reimage-cap-out-'), 'factory');
		const r = reimage([
			'capture',
			'--disk',
			dev,
			'--key',
			k.key,
			'--keep',
			'PARTLABEL=data',
			'--keep',
			`TYPE=${RECOVERY_TYPE}`,
			'--out',
			out,
		]);
		assert.is(r.status, 0, describe(r));
		assert.is(readManifest(out)['layout'] !== undefined, true);
		// The data partition renamed: the layout differs.
		sh('sfdisk', ['-q', '--part-label', dev, '2', 'userdata']);
		const before = await sha256Device(dev);
		const run = reimage(['run', '--bundle', out, '--target', dev, '--trust', k.pub, '--no-retain', '--yes', '--unmapped', 'leave']);
		assert.is(run.status, 4, describe(run));
		assert.match(
			run.stderr,
			/does not have the layout the factory image was captured from \(partition 2 name: recorded "data", found "userdata"\).*nothing was written/,
		);
		assert.is(await sha256Device(dev), before);
		// Put back, but the manifest's recorded layout edited to match a changed disk: the signature no longer matches.
		sh('sfdisk', ['-q', '--part-label', dev, '2', 'data']);
		const m = readManifest(out) as unknown as { layout: { partitions: { name?: string }[] } };
		m.layout.partitions[1]!.name = 'userdata';
		fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(m, null, 2) + '\n');
		const before2 = await sha256Device(dev);
		const run2 = reimage(['run', '--bundle', out, '--target', dev, '--trust', k.pub, '--no-retain', '--yes', '--unmapped', 'leave']);
		assert.is(run2.status, 3, describe(run2));
		assert.match(run2.stderr, /signature/);
		assert.is(await sha256Device(dev), before2);
	});
});

t.run();
