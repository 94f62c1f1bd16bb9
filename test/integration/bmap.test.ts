// Block maps: pack writes one in bmaptool's format (bmaptool copy accepts it),
// takes one from bmaptool create after checking it against the image, and run
// writes what it maps under each policy for the rest. Plus an image larger
// than 4 GiB (offsets past 32 bits) written and read back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { readManifest, reimage, sharedBundle, tamperedRange } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, makeBlank, mount, partNode, rmTmp, sh, sha256, tmpDir, umount } from '../helpers/sys.ts';
import type { Result } from '../helpers/sys.ts';

const t = suite('block maps');
const MiB = 1 << 20;

function ranges(bmapFile: string): Array<[number, number]> {
	const text = fs.readFileSync(bmapFile, 'utf8');
	return [...text.matchAll(/<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*<\/Range>/g)].map((m) => [
		Number(m[1]) * 4096,
		(Number(m[2] ?? m[1]) + 1) * 4096,
	]);
}

function bytesAt(file: string, start: number, len: number): Buffer {
	const fd = fs.openSync(file, 'r');
	try {
		const b = Buffer.alloc(len);
		fs.readSync(fd, b, 0, len, start);
		return b;
	} finally {
		fs.closeSync(fd);
	}
}

/**
 * The last 4 KiB block new.img leaves unmapped where the old disk has data:
 * far from where the new file systems write during restore and finish.
 */
function staleBlock(bmap: string, oldDisk: string): number {
	const zero = Buffer.alloc(4096);
	let found = -1;
	let at = 0;
	for (const [a, b] of [...ranges(bmap), [fs.statSync(fixtures().newImg).size, Infinity] as [number, number]]) {
		for (; at < a; at += 4096) if (!bytesAt(oldDisk, at, 4096).equals(zero)) found = at;
		at = b;
	}
	if (found < 0) throw new Error('the old disk has no data where the new image is unmapped');
	return found;
}

t('pack writes a block map that bmaptool copy accepts and that maps only data', async () => {
	const b = sharedBundle('zstd');
	const m = readManifest(b);
	const mapped = ranges(path.join(b, 'image.bmap')).reduce((n, [x, y]) => n + y - x, 0);
	assert.ok(mapped > 0 && mapped < m.raw.size / 2, `a mostly empty image maps little (${mapped} of ${m.raw.size})`);
	const d = tmpDir();
	const target = path.join(d, 't.img');
	makeBlank(target, m.raw.size);
	const dev = attachLoop(target);
	try {
		sh('bmaptool', ['-q', 'copy', '--bmap', path.join(b, 'image.bmap'), path.join(b, 'image.raw.zst'), dev]);
	} finally {
		detachLoop(dev);
	}
	assert.is(await sha256(target), m.raw.sha256, 'bmaptool wrote the image from our map and our seekable zstd');
	rmTmp(d);
});

// The disk is read back (--verify-written) right after the write, before the
// restore mounts the new system: for zero and write all of the image (its
// zeros included), for leave and discard its mapped ranges.
for (const policy of ['zero', 'write', 'leave', 'discard'] as const) {
	t(
		`run --unmapped ${policy}: mapped ranges written and read back; the rest ${policy === 'leave' ? 'keeps the old data' : policy === 'discard' ? 'discarded' : 'reads as zeros'}`,
		() => {
			const b = sharedBundle('zstd');
			const disk = freshOldDisk();
			const stale = staleBlock(path.join(b, 'image.bmap'), disk);
			const old = bytesAt(disk, stale, 4096);
			const dev = attachLoop(disk);
			let r: Result;
			try {
				r = reimage(['run', '--bundle', b, '--target', dev, '--no-retain', '--yes', '--unmapped', policy, '--verify-written']);
			} finally {
				detachLoop(dev);
			}
			assert.is(r.status, 0, describe(r));
			assert.match(r.stderr, new RegExp(`unmapped=${policy}`));
			assert.match(r.stderr, /read back ok/);
			const now = bytesAt(disk, stale, 4096);
			if (policy === 'leave') assert.ok(now.equals(old), `the unmapped block at ${stale} keeps the old data`);
			if (policy === 'zero' || policy === 'write')
				assert.ok(
					now.every((x) => x === 0),
					`the unmapped block at ${stale} reads as zeros`,
				);
			if (policy === 'zero') assert.match(r.stderr, /write-zeroes offload/);
		},
	);
}

t('an unknown --unmapped policy is refused with the choices (exit 2), before anything is opened', () => {
	const r = reimage(['run', '--bundle', sharedBundle('zstd'), '--target', '/dev/null', '--yes', '--unmapped', 'shred']);
	assert.is(r.status, 2, describe(r));
	assert.match(r.stderr, /--unmapped shred is not a policy: use one of zero, write, discard, leave/);
});

t("pack --bmap takes bmaptool create's map of the image; a map of another image, or of a changed image, is refused", () => {
	const d = tmpDir();
	const own = path.join(d, 'new.bmap');
	sh('bmaptool', ['-q', 'create', '-o', own, fixtures().newImg]);
	const out = path.join(d, 'b1');
	let r = reimage(['pack', fixtures().newImg, '--out', out, '--bmap', own, '--mount', 'PARTLABEL=root:/']);
	assert.is(r.status, 0, describe(r));
	assert.is(reimage(['verify', '--bundle', out]).status, 0);

	const other = path.join(d, 'old.bmap');
	sh('bmaptool', ['-q', 'create', '-o', other, fixtures().oldImg]);
	r = reimage(['pack', fixtures().newImg, '--out', path.join(d, 'b2'), '--bmap', other, '--mount', 'PARTLABEL=root:/']);
	assert.is(r.status, 3, describe(r));
	assert.match(r.stderr, /is for a \d+-byte image, but .* is \d+ bytes/);

	const changed = path.join(d, 'changed.img');
	sh('cp', ['--sparse=always', fixtures().newImg, changed]);
	const fd = fs.openSync(changed, 'r+');
	fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 100);
	fs.closeSync(fd);
	r = reimage(['pack', changed, '--out', path.join(d, 'b3'), '--bmap', own, '--mount', 'PARTLABEL=root:/']);
	assert.is(r.status, 3, describe(r));
	assert.match(r.stderr, /does not describe .*changed.img: blocks 0-\d+ have sha256/);

	// Data written into a hole the map leaves out: the map would skip it.
	const hole = ranges(own)[0]![1];
	const filled = path.join(d, 'filled.img');
	sh('cp', ['--sparse=always', fixtures().newImg, filled]);
	const fd2 = fs.openSync(filled, 'r+');
	fs.writeSync(fd2, Buffer.from('data the map does not know'), 0, 26, hole + 10);
	fs.closeSync(fd2);
	r = reimage(['pack', filled, '--out', path.join(d, 'b4'), '--bmap', own, '--mount', 'PARTLABEL=root:/']);
	assert.is(r.status, 3, describe(r));
	assert.match(r.stderr, new RegExp(`leaves bytes ${hole} to \\d+ out, but the image has data there`));
	rmTmp(d);
});

t('a block map whose range checksum is wrong fails verify before anything is written, naming the range', () => {
	const r = reimage(['verify', '--bundle', tamperedRange()]);
	assert.is(r.status, 3, describe(r));
	assert.match(r.stderr, /bytes 0 to \d+ of the image have sha256 [0-9a-f]{64}, but the block map says/);
});

// The write checks the ranges as it goes: found after the point of no return,
// the mismatch leaves the disk invalidated (first and last MiB zeroed), exit 10.
t('a block map whose range checksum is wrong, default policy -> 10 and the disk is invalidated', () => {
	const b = tamperedRange();
	const disk = freshOldDisk();
	const dev = attachLoop(disk);
	try {
		const r = reimage(['run', '--bundle', b, '--target', dev, '--no-retain', '--yes']);
		assert.is(r.status, 10, describe(r));
		assert.match(r.stderr, /point of no return .*but the block map says/s);
	} finally {
		detachLoop(dev);
	}
	const size = fs.statSync(disk).size;
	assert.ok(
		bytesAt(disk, 0, MiB).every((x) => x === 0),
		'first MiB zeroed',
	);
	assert.ok(
		bytesAt(disk, size - MiB, MiB).every((x) => x === 0),
		'last MiB zeroed',
	);
});

t('an image larger than 4 GiB: data past 4 GiB is packed, written, read back and mounted intact', async () => {
	const d = tmpDir();
	const img = path.join(d, 'big.img');
	const size = (4608 + 128 + 1) * MiB;
	makeBlank(img, size);
	sh('sfdisk', ['-q', img], { input: 'label: gpt\nstart=2048,size=65536,type=L,name=root\nstart=9437184,size=262144,type=L,name=high\n' });
	const root = path.join(d, 'root');
	const high = path.join(d, 'high');
	fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
	fs.mkdirSync(high);
	fs.writeFileSync(path.join(root, 'etc', 'fstab'), 'PARTLABEL=root / ext4 defaults 0 1\n');
	const marker = Buffer.alloc(3 * MiB);
	for (let i = 0; i < marker.length; i += 4) marker.writeUInt32LE((i * 2654435761) >>> 0, i);
	fs.writeFileSync(path.join(high, 'marker'), marker);
	sh('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', root, '-E', `offset=${2048 * 512}`, img, '32M']);
	sh('mkfs.ext4', ['-q', '-F', '-L', 'high', '-d', high, '-E', `offset=${9437184 * 512}`, img, '128M']);
	const out = path.join(d, 'bundle');
	let r = reimage(['pack', img, '--out', out, '--mount', 'PARTLABEL=root:/', '--mount', 'PARTLABEL=high:/high']);
	assert.is(r.status, 0, describe(r));
	const m = readManifest(out);
	assert.is(m.raw.size, size);
	assert.ok(
		ranges(path.join(out, 'image.bmap')).some(([a]) => a > 2 ** 32),
		'ranges past 4 GiB are mapped',
	);
	const target = path.join(d, 'target.img');
	makeBlank(target, size + 16 * MiB);
	const dev = attachLoop(target);
	try {
		r = reimage(['run', '--bundle', out, '--target', dev, '--no-retain', '--yes', '--verify-written']);
		assert.is(r.status, 0, describe(r));
		assert.match(r.stderr, /read back ok/);
		const mnt = mount(partNode(dev, 2));
		try {
			assert.ok(fs.readFileSync(path.join(mnt, 'marker')).equals(marker), 'the file past 4 GiB reads back intact');
		} finally {
			umount(mnt);
		}
	} finally {
		detachLoop(dev);
	}
	rmTmp(d);
});

t.run();
