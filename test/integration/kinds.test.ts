// Real-world image kinds (issue 16), each a v1 old disk and a v2 image built by
// test/fixtures/make-kinds.sh: pack finds the image's fstab, run writes,
// settles and restores the identity (owner by name, mode, xattr, ACL,
// capability, mtime) into the right file system. Also the refusals: a LUKS
// root in the image or on the old disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/fixtures.ts';
import { reimage } from '../helpers/reimage.ts';
import { copySparse, describe, exec, getAcl, getCap, getXattr, sh, sha256, tmpDir } from '../helpers/sys.ts';

const t = suite('image kinds');

type Kind = '4kn' | 'mbr' | 'mbr4k' | 'xfs' | 'btrfs' | 'luks' | 'lvm';
const MAKE = path.join(REPO, 'test', 'fixtures', 'make-kinds.sh');
const STAMP = Date.parse('2021-03-04T05:06:07Z') / 1000;

/** v1.img, v2.img and list of KIND, built once (shared through $REIMAGE_FIXTURES). */
function kind(k: Kind): { v1: string; v2: string; list: string } {
	const base = process.env['REIMAGE_FIXTURES'] ? path.resolve(process.env['REIMAGE_FIXTURES'], 'kinds') : tmpDir('reimage-kinds-');
	const dir = path.join(base, k);
	if (!fs.existsSync(path.join(dir, '.complete'))) {
		sh('bash', [MAKE, k, dir]);
		fs.writeFileSync(path.join(dir, '.complete'), '');
	}
	return { v1: path.join(dir, 'v1.img'), v2: path.join(dir, 'v2.img'), list: path.join(dir, 'list') };
}

/** A loop device over a private copy of FILE (with 4096-byte sectors for 4Kn), partitions added. */
function disk(file: string, sector = 512): { dev: string; detach: () => void } {
	const copy = path.join(tmpDir('reimage-kind-disk-'), 'disk.img');
	copySparse(file, copy);
	const dev = sh('losetup', ['-f', '--show', '--sector-size', String(sector), copy]).trim();
	addParts(dev);
	return {
		dev,
		detach: () => {
			exec('partx', ['-d', dev]);
			exec('losetup', ['-d', dev]);
		},
	};
}

/** partx -u without a range skips MBR logical partitions past the count of table entries. */
function addParts(dev: string): void {
	exec('partx', ['-u', '--nr', '1:256', dev]);
}

function packed(image: string, extra: string[] = []): string {
	const out = path.join(tmpDir('reimage-kind-bundle-'), 'b');
	const r = reimage(['pack', image, '--out', out, '--codec', 'zstd', ...extra]);
	assert.is(r.status, 0, describe(r));
	return out;
}

/** Mount NODE (with OPTS) read-only on a fresh directory for FN. */
function withMounted<T>(node: string, opts: string, fn: (dir: string) => T): T {
	const dir = tmpDir('reimage-kind-mnt-');
	sh('mount', ['-o', `ro${opts ? `,${opts}` : ''}`, node, dir]);
	try {
		return fn(dir);
	} finally {
		sh('umount', [dir]);
	}
}

/** The identity of v1, as the new system must hold it (kiosk is uid 1002 there). */
function checkIdentity(root: string, data: string): void {
	assert.is(fs.readFileSync(path.join(root, 'etc/machine-id'), 'utf8'), '0123456789abcdef0123456789a01d42\n');
	const key = path.join(root, 'etc/kiosk/site.key');
	const st = fs.lstatSync(key);
	assert.is(fs.readFileSync(key, 'utf8'), 'OLD-SITE-KEY\n');
	assert.equal([st.uid, st.gid, st.mode & 0o7777], [1002, 1002, 0o640]);
	assert.is(Math.floor(st.mtimeMs / 1000), STAMP);
	assert.is(getXattr(key, 'user.kiosk')?.toString(), 'kept');
	assert.ok(getAcl(key).includes('user:0:r--'), getAcl(key).join(' '));
	assert.match(getCap(path.join(root, 'etc/kiosk/tool')), /cap_net_bind_service[=+]ep/);
	const dir = fs.lstatSync(path.join(root, 'etc/kiosk'));
	assert.equal([dir.uid, dir.mode & 0o7777], [1002, 0o750]);
	assert.is(fs.readFileSync(path.join(data, 'config'), 'utf8'), 'kiosk_url=https://example.test/42\n');
	assert.ok(fs.existsSync(path.join(data, 'README-new')), 'the new data file system is not the one restored into');
}

/** pack v2, reimage a copy of v1 with it, check the identity in the new system. */
function reimageKind(k: Kind, sector: number, parts: { root: [number, string]; data: [number, string] }): void {
	const fx = kind(k);
	const b = packed(fx.v2);
	const d = disk(fx.v1, sector);
	try {
		const r = reimage(['run', '--bundle', b, '--target', d.dev, '--retain', fx.list, '--yes']);
		assert.is(r.status, 0, describe(r));
		addParts(d.dev);
		withMounted(`${d.dev}p${parts.root[0]}`, parts.root[1], (root) =>
			withMounted(`${d.dev}p${parts.data[0]}`, parts.data[1], (data) => {
				assert.match(fs.readFileSync(path.join(root, 'etc/os-release'), 'utf8'), /VERSION_ID=2/);
				checkIdentity(root, data);
			}),
		);
	} finally {
		d.detach();
	}
}

t('4Kn: a GPT image made for 4096-byte sectors reimages a 4Kn disk; the identity is restored', () => {
	reimageKind('4kn', 4096, { root: [1, ''], data: [2, ''] });
});

t('4Kn: the same image on a 512-byte disk is refused before writing -> 4, untouched', async () => {
	const fx = kind('4kn');
	const b = packed(fx.v2);
	const d = disk(fx.v1, 512);
	try {
		const before = await sha256(d.dev);
		const r = reimage(['run', '--bundle', b, '--target', d.dev, '--retain', fx.list, '--yes']);
		assert.is(r.status, 4, describe(r));
		assert.match(r.stderr, /has 512-byte logical sectors but the image's partition table is made for 4096-byte sectors/);
		assert.is(await sha256(d.dev), before);
	} finally {
		d.detach();
	}
});

t('MBR: extended partition 2 and logical partitions 5 and 6 are packed, written, settled and restored', () => {
	const fx = kind('mbr');
	const b = packed(fx.v2);
	const m = JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8')) as {
		table: { partitions: { number: number; type: string }[] };
	};
	assert.equal(
		m.table.partitions.map((p) => `${p.number}:${p.type}`),
		['1:83', '2:5', '5:83', '6:83'],
	);
	reimageKind('mbr', 512, { root: [1, ''], data: [5, ''] });
});

t(
	'MBR on 4096-byte sectors: read as 4Kn (not as 512-byte sectors), logical partitions followed, reimages a 4Kn disk; also from .zst',
	() => {
		const fx = kind('mbr4k');
		const table = (b: string) =>
			(
				JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8')) as {
					table: { sectorSize: number; partitions: { number: number; start: number }[] };
				}
			).table;
		const t4k = table(packed(fx.v2));
		assert.is(t4k.sectorSize, 4096);
		assert.equal(
			t4k.partitions.map((p) => `${p.number}@${p.start}`),
			['1@256', '2@10496', '5@10752', '6@15104'],
		);
		const zst = path.join(tmpDir('reimage-kind-mbr4k-'), 'disk.img.zst');
		sh('zstd', ['-q', '-1', fx.v2, '-o', zst]);
		assert.equal(table(packed(zst)), t4k);
		reimageKind('mbr4k', 4096, { root: [1, ''], data: [5, ''] });
	},
);

t(
	'MBR: a logical partition reaching past its extended partition and the image, or overlapping another, is refused by pack -> 3, named',
	() => {
		const fx = kind('mbr');
		for (const [how, re] of [
			['past', /partition 6 of the image's table ends at byte \d+, past the end of the image/],
			['outside', /logical partition 6 of the image's table \(sectors \d+-\d+\) lies outside extended partition 2/],
			['overlap', /partitions 5 and 6 of the image's table overlap/],
		] as const) {
			const img = path.join(tmpDir('reimage-kind-bad-mbr-'), 'disk.img');
			copySparse(fx.v2, img);
			const fd = fs.openSync(img, 'r+');
			try {
				const sector = (at: number) => {
					const b = Buffer.alloc(512);
					fs.readSync(fd, b, 0, 512, at * 512);
					return b;
				};
				const mbr = sector(0);
				const slot = [0, 1, 2, 3].find((i) => [0x05, 0x0f].includes(mbr[446 + i * 16 + 4] ?? 0));
				assert.ok(slot !== undefined, 'the fixture has an extended partition');
				const entry = 446 + slot * 16;
				const extStart = mbr.readUInt32LE(entry + 8);
				const first = sector(extStart);
				const l5Start = extStart + first.readUInt32LE(446 + 8);
				const at = extStart + first.readUInt32LE(462 + 8);
				const ebr = sector(at);
				// past: partition 6 a GiB long; outside: the extended partition a sector short of 6's end; overlap: 5 reaches into 6.
				if (how === 'past') ebr.writeUInt32LE(1 << 21, 446 + 12);
				if (how === 'overlap') first.writeUInt32LE(at + ebr.readUInt32LE(446 + 8) + 8 - l5Start, 446 + 12);
				fs.writeSync(fd, first, 0, 512, extStart * 512);
				if (how === 'outside') mbr.writeUInt32LE(mbr.readUInt32LE(entry + 12) - 1, entry + 12);
				fs.writeSync(fd, ebr, 0, 512, at * 512);
				fs.writeSync(fd, mbr, 0, 512, 0);
			} finally {
				fs.closeSync(fd);
			}
			const out = path.join(tmpDir('reimage-kind-bundle-'), 'b');
			const r = reimage(['pack', img, '--out', out, '--mount', 'LABEL=root:/']);
			assert.is(r.status, 3, describe(r));
			assert.match(r.stderr, re, r.stderr);
		}
	},
);

t('XFS: pack reads the fstab of an XFS root; the identity is restored into XFS root and data', () => {
	reimageKind('xfs', 512, { root: [1, 'norecovery'], data: [2, 'norecovery'] });
});

t("btrfs: subvolumes from each system's own fstab: read from the old root/home, restored into the image's @/@home", () => {
	// v1 (the old disk) has subvolumes root and home, v2 (the image) @ and @home; a decoy /etc/machine-id at v1's top level.
	reimageKind('btrfs', 512, { root: [1, 'subvol=@'], data: [1, 'subvol=@home'] });
	const m = JSON.parse(fs.readFileSync(path.join(packed(kind('btrfs').v2), 'manifest.json'), 'utf8')) as {
		mounts: { path: string; options?: string }[];
	};
	assert.equal(
		m.mounts.map((x) => `${x.path} ${x.options}`),
		['/ subvol=@', '/home subvol=@home'],
	);
});

t(
	"btrfs: an old system's /etc/fstab that links out of its file system (host file, FIFO, /dev/zero) is read inside it, never followed out",
	() => {
		const k = kind('btrfs');
		const bundle = packed(k.v2, ['--retain', k.list]);
		const host = tmpDir('reimage-kind-host-');
		// Followed on the host, this names the old `home` subvolume as / and the plan loses /etc/machine-id.
		fs.writeFileSync(path.join(host, 'fstab'), 'LABEL=fedora / btrfs subvol=home 0 0\n');
		sh('mkfifo', [path.join(host, 'fifo')]);
		for (const to of [`../../../../../../../../../..${host}/fstab`, `${host}/fifo`, '/dev/zero']) {
			const d = disk(k.v1);
			try {
				const top = tmpDir('reimage-kind-top-');
				sh('mount', [`${d.dev}p1`, top]);
				try {
					fs.mkdirSync(path.join(top, 'etc'), { recursive: true });
					fs.symlinkSync(to, path.join(top, 'etc/fstab'));
				} finally {
					sh('umount', [top]);
				}
				const r = reimage(['plan', '--bundle', bundle, '--target', d.dev, '--json'], { killAfterMs: 60_000 });
				assert.is(r.status, 0, `${to}: ${describe(r)}`);
				const kept = JSON.stringify(JSON.parse(r.stdout));
				assert.ok(kept.includes('/etc/machine-id'), kept);
				assert.not.match(sh('cat', ['/proc/mounts']), /reimage-peek-/);
			} finally {
				d.detach();
			}
		}
	},
);

t('LUKS: pack refuses an image whose root is LUKS-encrypted, naming the partition -> 3 (fstab search and --mount)', () => {
	const fx = kind('luks');
	for (const extra of [[], ['--mount', 'PARTLABEL=root:/', '--mount', 'PARTLABEL=data:/data']]) {
		const r = reimage(['pack', fx.v2, '--out', path.join(tmpDir(), 'b'), ...extra]);
		assert.is(r.status, 3, describe(r));
		assert.match(
			r.stderr,
			/partition 1 \(LABEL=root\) is LUKS-encrypted \(crypto_LUKS\), and reimage supports only unencrypted file systems/,
		);
	}
});

t('LUKS: an encrypted old root is refused before writing, naming the partition -> 5, untouched', async () => {
	const b = packed(kind('mbr').v2);
	const fx = kind('luks');
	const d = disk(fx.v1);
	try {
		const before = await sha256(d.dev);
		const r = reimage(['run', '--bundle', b, '--target', d.dev, '--retain', fx.list, '--yes']);
		assert.is(r.status, 5, describe(r));
		assert.match(r.stderr, new RegExp(`the old system's / \\(LABEL=root\\) is ${d.dev}p1, which is LUKS-encrypted \\(crypto_LUKS\\)`));
		assert.is(await sha256(d.dev), before);
	} finally {
		d.detach();
	}
});

/** A copy of the luks fixture's IMAGE whose partition 1 (sector 256) is an LVM2 physical volume label without metadata (blkid TYPE=LVM2_member). */
function lvmLabelOnly(image: string): string {
	const out = path.join(tmpDir('reimage-kind-lvm-'), 'lvm.img');
	copySparse(image, out);
	const label = Buffer.alloc(512);
	label.write('LABELONE', 0, 'latin1');
	label.writeBigUInt64LE(1n, 8);
	label.writeUInt32LE(32, 20);
	label.write('LVM2 001', 24, 'latin1');
	label.write('AbCdEfGhIjKlMnOpQrStUvWxYz012345', 32, 'latin1');
	label.writeBigUInt64LE(BigInt(40 << 20), 64);
	// LVM's CRC: reflected CRC-32 from 0xf597a6cf without the final xor, over bytes 20..511.
	label.writeUInt32LE(~crc32(label.subarray(20), ~0xf597a6cf >>> 0) >>> 0, 16);
	const fd = fs.openSync(out, 'r+');
	try {
		// The LUKS2 headers (and their copies up to 4 MiB in) go first.
		fs.writeSync(fd, Buffer.alloc(8 << 20), 0, 8 << 20, 256 * 512);
		fs.writeSync(fd, label, 0, 512, 256 * 512 + 512);
	} finally {
		fs.closeSync(fd);
	}
	return out;
}

type Manifested = {
	mounts: { path: string; spec: { kind: string; value: string }; partition: number; lv?: string }[];
	table: { partitions: { lvm?: { vg: string; lvs: { name: string; fs: { uuid?: string } }[] } }[] };
};

t(
	'LVM: pack finds /etc/fstab in the root logical volume (read at its extents, no device-mapper) and plans / and /data on the LVs',
	async () => {
		const fx = kind('lvm');
		const b = packed(fx.v2);
		const m = JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8')) as Manifested;
		const lvm = m.table.partitions[0]?.lvm;
		assert.is(lvm?.vg, 'vgkiosk');
		const uuid = (n: string) => lvm?.lvs.find((l) => l.name === n)?.fs.uuid;
		assert.equal(
			m.mounts.map((x) => [x.path, x.partition, x.lv, x.spec.kind, x.spec.value]),
			[
				['/', 1, 'root', 'UUID', uuid('root')],
				['/data', 1, 'data', 'UUID', uuid('data')],
			],
		);
		// A PV label whose metadata cannot be read is named, not taken for "no fstab".
		const r = reimage(['pack', lvmLabelOnly(kind('luks').v2), '--out', path.join(tmpDir(), 'b')]);
		assert.is(r.status, 3, describe(r));
		assert.match(r.stderr, /partition 1 of .* is an LVM physical volume whose metadata cannot be read \(.*\): check the image with pvck/);
	},
);

t("LVM: the image's volume group name on another disk (not the target) is refused before writing, named -> 4, untouched", async () => {
	const fx = kind('lvm');
	const b = packed(fx.v2);
	const target = disk(kind('mbr').v1);
	// Another disk of the machine carrying a volume group of the image's name (the old LVM disk).
	const other = disk(fx.v1);
	try {
		const before = await sha256(target.dev);
		const r = reimage(['run', '--bundle', b, '--target', target.dev, '--no-retain', '--yes']);
		assert.is(r.status, 4, describe(r));
		assert.match(
			r.stderr,
			new RegExp(
				`volume group vgkiosk is also on ${other.dev}p1, which is not on the target, and the new image's volume group has that name: rename the other one \\(vgrename `,
			),
		);
		assert.is(await sha256(target.dev), before);
	} finally {
		other.detach();
		target.detach();
	}
});

t(
	'LVM: an old system on LVM is read by activating its volume group, seeing only the target (no device-mapper here: refused before writing, named), untouched',
	async () => {
		const fx = kind('lvm');
		const b = packed(fx.v2);
		const d = disk(fx.v1);
		try {
			const before = await sha256(d.dev);
			const r = reimage(['run', '--bundle', b, '--target', d.dev, '--retain', fx.list, '--yes']);
			const dm = fs.existsSync('/sys/module/dm_mod');
			if (!dm) {
				assert.is(r.status, 5, describe(r));
				assert.match(
					r.stderr,
					new RegExp(
						`lvm vgchange --config devices\\{filter=\\["a\\|\\^${d.dev.replace(/\//g, '\\/')}p1\\$\\|","r\\|\\.\\*\\|"\\].* -ay vgkiosk: exit`,
					),
				);
				assert.is(await sha256(d.dev), before);
			} else assert.is(r.status, 0, describe(r));
		} finally {
			d.detach();
		}
	},
);

t('pack takes a compressed whole-disk image (.xz, .gz, .bz2, .zst), found by its magic bytes, in one step', async () => {
	const fx = kind('mbr');
	const dir = tmpDir('reimage-kind-shipped-');
	const plain = packed(fx.v2);
	const want = (JSON.parse(fs.readFileSync(path.join(plain, 'manifest.json'), 'utf8')) as { raw: unknown; mounts: unknown }).raw;
	for (const [tool, args, name] of [
		['xz', ['-T0', '-1', '-c'], 'disk.img.xz'],
		['gzip', ['-1', '-c'], 'disk.img.gz'],
		['bzip2', ['-1', '-c'], 'disk.img.bz2'],
		// The magic decides, not the name.
		['zstd', ['-1', '-q', '-c'], 'disk.img'],
	] as const) {
		const file = path.join(dir, name);
		const r0 = exec('sh', ['-c', `${tool} ${args.join(' ')} '${fx.v2}' > '${file}'`]);
		assert.is(r0.status, 0, describe(r0));
		const b = packed(file);
		const m = JSON.parse(fs.readFileSync(path.join(b, 'manifest.json'), 'utf8')) as { raw: unknown; mounts: { path: string }[] };
		assert.equal(m.raw, want, name);
		assert.equal(
			m.mounts.map((x) => x.path),
			['/', '/data'],
		);
		assert.equal(
			fs.readdirSync(b).filter((f) => f.startsWith('.')),
			[],
			'the decoded temp file is left behind',
		);
		fs.rmSync(file);
	}
});

t(
	'pack of a compressed image that decodes past --max-size (a zero bomb, or a larger image) is stopped there -> 3, named, nothing left',
	() => {
		const dir = tmpDir('reimage-kind-bomb-');
		const bomb = path.join(dir, 'disk.img.zst');
		// 1 GiB of zeros behind a real MBR: a few KiB compressed.
		sh('sh', ['-c', `{ head -c 512 '${kind('mbr').v2}'; head -c 1G /dev/zero; } | zstd -q -1 -o '${bomb}'`]);
		const out = path.join(dir, 'b');
		const t0 = Date.now();
		const r = reimage(['pack', bomb, '--out', out, '--max-size', '64M']);
		assert.is(r.status, 3, describe(r));
		assert.match(r.stderr, /disk\.img\.zst is zstd-compressed and decodes to more than 64 MiB \(67108864 bytes, the --max-size cap\)/);
		assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
		assert.equal(fs.readdirSync(out), []);
		const r2 = reimage(['pack', bomb, '--out', out, '--max-size', 'lots']);
		assert.is(r2.status, 2, describe(r2));
		assert.match(r2.stderr, /--max-size lots is not a size/);
	},
);

t('pack of a compressed file that is not a whole-disk image (a compressed file system) -> 3, named', () => {
	const dir = tmpDir('reimage-kind-notdisk-');
	const fsimg = path.join(dir, 'rootfs.img');
	sh('truncate', ['-s', '8M', fsimg]);
	sh('mkfs.ext4', ['-q', '-F', fsimg]);
	sh('xz', ['-1', fsimg]);
	const out = path.join(dir, 'b');
	const r = reimage(['pack', `${fsimg}.xz`, '--out', out]);
	assert.is(r.status, 3, describe(r));
	assert.match(r.stderr, /rootfs\.img\.xz is xz-compressed, but what it holds is not a whole-disk image \(it has no partition table/);
	assert.equal(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
	// Truncated: named as corrupt, nothing left behind.
	const cut = path.join(dir, 'cut.img.gz');
	fs.writeFileSync(
		cut,
		fs.readFileSync(sh('sh', ['-c', `gzip -c '${kind('mbr').v2}' > '${dir}/full.gz' && echo '${dir}/full.gz'`]).trim()).subarray(0, 20000),
	);
	const r2 = reimage(['pack', cut, '--out', out]);
	assert.is(r2.status, 3, describe(r2));
	assert.match(r2.stderr, /cut\.img\.gz looks gzip-compressed but does not decompress/);
	assert.equal(fs.readdirSync(out), []);
});

t.run();
