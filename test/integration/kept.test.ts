// Kept partitions (run --keep, the bundle's keep, the partition that holds
// the bundle): their bytes are never written and the new table carries them
// at the same place with the same identity; an image that would land in one
// is refused with nothing written; a bundle read from a partition of the
// target keeps that partition and the retained set is saved on it.
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { copyBundleFiles, killedAt, reimage, sharedBundle } from '../helpers/reimage.ts';
import { checkResult } from '../helpers/schema.ts';
import { attachLoop, describe, detachLoop, mount, partNode, partxUpdate, sfdiskJson, sh, sha256, umount } from '../helpers/sys.ts';

const t = suite('kept partitions');

const MiB = 1 << 20;
// /home and a vendor recovery type (any GUID the image does not use).
const HOME_TYPE = '933AC7E1-2EB4-4F13-B844-0E14E2AEF915';
const RECOVERY_TYPE = '3B8F8425-20E0-4F3B-907F-1A25A76F98E8';
// Fresh per test process: two disks with one PARTUUID on a machine (another run's) would make PARTUUID= ambiguous.
const HOME_UUID = randomUUID();
const RECOVERY_UUID = randomUUID();

/** The 320 MiB old disk grown to 400 MiB with home (3, ext4 with a file) and recovery (4, random bytes) after it. */
function diskWithKept(): string {
	const f = freshOldDisk();
	fs.truncateSync(f, 400 * MiB);
	sh('sfdisk', ['-q', '--relocate', 'gpt-bak-std', f]);
	sh('sfdisk', ['-q', '--append', f], {
		input: `start=${320 * 2048}, size=${30 * 2048}, type=${HOME_TYPE}, uuid=${HOME_UUID}, name=home\nstart=${352 * 2048}, size=${30 * 2048}, type=${RECOVERY_TYPE}, uuid=${RECOVERY_UUID}, name=recovery, attrs="RequiredPartition GUID:63"\n`,
	});
	const src = fs.mkdtempSync('/tmp/reimage-home-');
	fs.writeFileSync(path.join(src, 'user-file'), 'kept through the reimage\n');
	sh('mkfs.ext4', ['-q', '-F', '-L', 'home', '-E', `offset=${320 * MiB}`, '-d', src, f, `${30 * 1024}k`]);
	fs.rmSync(src, { recursive: true });
	const fd = fs.openSync(f, 'r+');
	fs.writeSync(fd, createHash('sha256').update('recovery').digest().toString('hex').repeat(4096), 352 * MiB);
	fs.closeSync(fd);
	return f;
}

/** sha256 of bytes [from, from + len) of FILE. */
function rangeHash(file: string, from: number, len: number): string {
	const fd = fs.openSync(file, 'r');
	const buf = Buffer.alloc(len);
	fs.readSync(fd, buf, 0, len, from);
	fs.closeSync(fd);
	return createHash('sha256').update(buf).digest('hex');
}

const identity = (file: string) =>
	sfdiskJson(file)
		.partitions.filter((p) => p.name === 'home' || p.name === 'recovery')
		.map((p) => ({ ...p, node: p.node.replace(/^.*?(\d+)$/, '$1') }));

t('kept by PARTLABEL and by type: bytes untouched, same place and identity in the new table, plan shows them', async () => {
	const fx = fixtures();
	const file = diskWithKept();
	const before = [rangeHash(file, 320 * MiB, 30 * MiB), rangeHash(file, 352 * MiB, 30 * MiB)];
	const idBefore = identity(file);
	const dev = attachLoop(file);
	try {
		const keep = ['--keep', 'PARTLABEL=home', '--keep', `TYPE=${RECOVERY_TYPE}`];
		const p = reimage(['plan', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fx.list, ...keep, '--json']);
		assert.is(p.status, 0, describe(p));
		const plan = checkResult(p.stdout) as {
			plan: { partitionsAfter: { number: number; kept?: boolean }[] };
			kept: { name?: string; numberAfter: number }[];
		};
		assert.equal(
			plan.plan.partitionsAfter.map((x) => [x.number, x.kept === true]),
			[
				[1, false],
				[2, false],
				[3, true],
				[4, true],
			],
		);
		assert.equal(
			plan.kept.map((k) => [k.name, k.numberAfter]),
			[
				['home', 3],
				['recovery', 4],
			],
		);
		const text = reimage(['plan', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fx.list, ...keep]);
		assert.match(text.stdout, /3\s+at 320 MiB, 30 MiB\s+ext4\s+home\s+\(kept, not written\)/);
		const r = reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fx.list, ...keep, '--yes', '--json']);
		assert.is(r.status, 0, describe(r));
		const report = checkResult(r.stdout) as { kept: { why: string[] }[] };
		assert.equal(
			report.kept.map((k) => k.why),
			[['PARTLABEL=home'], [`TYPE=${RECOVERY_TYPE}`]],
		);
		partxUpdate(dev);
		const dir = mount(partNode(dev, 3));
		try {
			assert.is(fs.readFileSync(path.join(dir, 'user-file'), 'utf8'), 'kept through the reimage\n');
		} finally {
			umount(dir);
		}
	} finally {
		detachLoop(dev);
	}
	assert.equal([rangeHash(file, 320 * MiB, 30 * MiB), rangeHash(file, 352 * MiB, 30 * MiB)], before, 'a kept partition was written');
	assert.equal(identity(file), idBefore, 'the kept partitions changed identity');
	const names = sfdiskJson(file).partitions.map((p) => p.name);
	assert.equal(names, ['root', 'data', 'home', 'recovery']);
	fs.rmSync(path.dirname(file), { recursive: true });
});

t('an image that would land in a kept partition is refused, naming both, with the disk byte-identical', async () => {
	const fx = fixtures();
	const file = freshOldDisk();
	const before = await sha256(file);
	const dev = attachLoop(file);
	try {
		const r = reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fx.list, '--keep', 'PARTLABEL=data', '--yes']);
		assert.is(r.status, 4, describe(r));
		assert.match(
			r.stderr,
			new RegExp(
				`partition 2 of the image \\("data"\\) \\(bytes \\d+-\\d+\\) overlaps kept partition ${dev}p2 \\("data", bytes \\d+-\\d+\\)`,
			),
		);
		assert.match(r.stderr, /nothing was written/);
		const none = reimage([
			'run',
			'--bundle',
			sharedBundle('zstd'),
			'--target',
			dev,
			'--retain',
			fx.list,
			'--keep',
			'PARTLABEL=nosuch',
			'--yes',
		]);
		assert.is(none.status, 4, describe(none));
		assert.match(none.stderr, /keep PARTLABEL=nosuch: no partition of \S+ matches it/);
		const bad = reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fx.list, '--keep', 'UUID=x', '--yes']);
		assert.is(bad.status, 2, describe(bad));
		assert.match(bad.stderr, /keep selector "UUID=x" is not PARTLABEL=name, PARTUUID=guid or TYPE=guid/);
	} finally {
		detachLoop(dev);
	}
	assert.is(await sha256(file), before, 'the refused run wrote to the disk');
	fs.rmSync(path.dirname(file), { recursive: true });
});

t(
	'a bundle read from a partition of the target keeps it; the retained set and the re-entry record are saved there before the first write',
	async () => {
		const fx = fixtures();
		const file = diskWithKept();
		const dev = attachLoop(file);
		try {
			const home = mount(partNode(dev, 3), { rw: true });
			copyBundleFiles(sharedBundle('zstd'), path.join(home, 'bundle'));
			umount(home);
			const spec = `PARTUUID=${HOME_UUID}:/bundle`;
			const args = ['run', '--bundle', spec, '--target', dev, '--retain', fx.list, '--yes'];
			const ok = reimage(args);
			assert.is(ok.status, 0, describe(ok));
			assert.match(ok.stderr, new RegExp(`keep ${dev}p3 \\("home"\\) \\(holds the bundle\\)`));
			assert.match(ok.stderr, new RegExp(`retained set saved in ${dev}p3:/bundle/reimage-retained/`));
			partxUpdate(dev);
			const after = mount(partNode(dev, 3));
			try {
				assert.ok(fs.existsSync(path.join(after, 'bundle', 'manifest.json')), 'the bundle is gone');
				assert.ok(!fs.existsSync(path.join(after, 'bundle', 'reimage-retained')), 'the used set was not removed');
				assert.is(fs.readFileSync(path.join(after, 'user-file'), 'utf8'), 'kept through the reimage\n');
			} finally {
				umount(after);
			}
			// Again, killed as the write begins: what is on the kept partition then is what a power cut leaves. Should
			// this process see the line late, the run kills itself half-way through the write (it never gets to finish).
			const r = await killedAt(args, /== write/, { ...process.env, REIMAGE_TEST_CUT: 'write' });
			assert.ok(r.acted, r.stderr);
			const dir = mount(partNode(dev, 3));
			try {
				const kept = path.join(dir, 'bundle', 'reimage-retained');
				const [key] = fs.readdirSync(kept);
				assert.ok(key, 'no retained set on the kept partition');
				const index = JSON.parse(fs.readFileSync(path.join(kept, key, 'retained.json'), 'utf8')) as {
					format: string;
					entries: { sha256?: string }[];
				};
				assert.is(index.format, 'reimage-retained/1');
				assert.ok(
					index.entries.some((e) => e.sha256),
					'no checksummed entries',
				);
				assert.is(fs.statSync(path.join(kept, key)).mode & 0o777, 0o700);
				assert.is(fs.statSync(path.join(kept, key, 'retained.json')).mode & 0o777, 0o600);
				const re = JSON.parse(fs.readFileSync(path.join(kept, key, 'reentry.json'), 'utf8')) as {
					format: string;
					bundle: { location: string };
					archive: string;
					passed: string;
					kept: { partuuid: string }[];
				};
				assert.equal([re.format, re.bundle.location, re.archive], ['reimage-reentry/1', spec, key]);
				assert.equal(
					re.kept.map((k) => k.partuuid.toLowerCase()),
					[HOME_UUID],
				);
				assert.ok(Date.parse(re.passed) > 0);
			} finally {
				umount(dir);
			}
		} finally {
			detachLoop(dev);
		}
		fs.rmSync(path.dirname(file), { recursive: true });
	},
);

t('a bundle directory on a mounted partition of the target is refused with the reason, nothing written', async () => {
	const fx = fixtures();
	const file = diskWithKept();
	const dev = attachLoop(file);
	try {
		const home = mount(partNode(dev, 3), { rw: true });
		try {
			copyBundleFiles(sharedBundle('zstd'), path.join(home, 'bundle'));
			const r = reimage(['run', '--bundle', path.join(home, 'bundle'), '--target', dev, '--retain', fx.list, '--yes']);
			assert.is(r.status, 4, describe(r));
			assert.match(r.stderr, /is on \/dev\/loop\d+p3, a mounted partition of the target .*--bundle PARTUUID=/);
		} finally {
			umount(home);
		}
	} finally {
		detachLoop(dev);
	}
	fs.rmSync(path.dirname(file), { recursive: true });
});

t.run();
