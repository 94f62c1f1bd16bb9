// The real Debian images of the VM tier (test/images/): a bootable disk per
// kind in a v1 and a v2, built once per machine and cached under /tmp by the
// scripts themselves; a bundle of an image, packed once per test process;
// and what the booted system's marker line must say.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO } from './fixtures.ts';
import { BIN } from './reimage.ts';
import { sh, tmpDir } from './sys.ts';

export const IMAGES = path.join(REPO, 'test', 'images');
export const IDENTITY_LIST = path.join(IMAGES, 'identity.list');
export const IDENTITY = ['/etc/machine-id', '/etc/ssh/ssh_host_ed25519_key', '/etc/ssl/private/reimage-test.pem'] as const;

// A kind is disk.sh's parameters; more kinds are more values here, never a second builder.
export type ImageKind = {
	firmware?: 'bios' | 'efi';
	table?: 'gpt' | 'mbr';
	rootFs?: 'ext4' | 'xfs' | 'btrfs';
	rootPart?: 'primary' | 'logical';
	sectorSize?: 512 | 4096;
	// The root partition an LVM PV of volume group vgkiosk (the same name in v1 and v2), the root its LV "root".
	lvm?: boolean;
};

const kindArgs = (k: ImageKind) => [
	...['--firmware', k.firmware ?? 'bios', '--table', k.table ?? 'gpt', '--root-fs', k.rootFs ?? 'ext4'],
	...['--root-part', k.rootPart ?? 'primary', '--sector-size', String(k.sectorSize ?? 512), '--lvm', k.lvm ? 'yes' : 'no'],
];

// debianDisk: the cached image of KIND in VERSION (never modify it: copy it first).
export function debianDisk(kind: ImageKind, version: 1 | 2): string {
	const build = () =>
		sh(path.join(IMAGES, 'disk.sh'), [...kindArgs(kind), '--version', String(version)], { killAfterMs: 30 * 60_000 }).trim();
	// The first build downloads Debian's packages: a mirror hiccup gets one more try (what was fetched is cached).
	try {
		return build();
	} catch {
		return build();
	}
}

const bundles = new Map<string, string>();

// debianBundle: KIND's v2 packed (zstd) with the identity list, signed with KEY, keeping the partitions KEEP; shared, never modify it.
export function debianBundle(kind: ImageKind, key: string, keep: readonly string[] = []): string {
	const id = JSON.stringify([kindArgs(kind), key, keep]);
	const have = bundles.get(id);
	if (have) return have;
	const out = path.join(tmpDir('reimage-debian-bundle-'), 'bundle');
	sh(BIN, [
		'pack',
		debianDisk(kind, 2),
		'--out',
		out,
		'--codec',
		'zstd',
		'--retain',
		IDENTITY_LIST,
		'--sign',
		key,
		...keep.flatMap((k) => ['--keep', k]),
	]);
	bundles.set(id, out);
	return out;
}

// rootPart: the root file system's byte range in IMG, as disk.sh wrote it beside the image (IMG.root):
// a partition, or the extents of a logical volume inside one.
function rootPart(img: string): { offset: number; size: number } {
	const [offset, size] = readFileSync(`${img}.root`, 'utf8').trim().split(/\s+/).map(Number);
	if (!offset || !size) throw new Error(`${img}.root does not say where the root file system is`);
	return { offset, size };
}

// identityOf: the sha256 of each identity file of IMG's root file system: ext4 read
// with debugfs; XFS and btrfs (subvolume @) mounted read-only, without log recovery, for the read.
export function identityOf(img: string, kind: ImageKind = {}): Record<(typeof IDENTITY)[number], string> {
	const root = rootPart(img);
	const fs = kind.rootFs ?? 'ext4';
	const digest = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');
	if (fs === 'ext4') {
		const sum = (p: string) => {
			const bytes = sh('debugfs', ['-R', `cat ${p}`, `${img}?offset=${root.offset}`]);
			if (!bytes) throw new Error(`${p} is not in ${img}`);
			return digest(bytes);
		};
		return Object.fromEntries(IDENTITY.map((p) => [p, sum(p)])) as Record<(typeof IDENTITY)[number], string>;
	}
	const dir = tmpDir('reimage-identity-');
	const how = fs === 'xfs' ? 'ro,norecovery' : 'ro,rescue=nologreplay,subvol=@';
	sh('mount', ['-t', fs, '-o', `${how},loop,offset=${root.offset},sizelimit=${root.size}`, img, dir]);
	try {
		return Object.fromEntries(IDENTITY.map((p) => [p, digest(readFileSync(path.join(dir, p)))])) as Record<
			(typeof IDENTITY)[number],
			string
		>;
	} finally {
		sh('umount', [dir]);
	}
}

// markerFor: the whole marker line of a system of VERSION whose identity is ID (report: the reimage's outcome, or none).
export function markerFor(version: 1 | 2, id: Record<(typeof IDENTITY)[number], string>, report = 'success', certVersion = 1): string {
	return (
		`^REIMAGE-TEST-MARKER version=${version} machine-id=${id['/etc/machine-id']} ssh-host-key=${id['/etc/ssh/ssh_host_ed25519_key']} ` +
		`cert=${id['/etc/ssl/private/reimage-test.pem']} cert-meta=kiosk:kiosk:640 cert-xattr=cert-of-v${certVersion} report=${report}$`
	);
}
