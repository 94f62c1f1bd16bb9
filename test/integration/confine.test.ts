// Nothing escapes its root (issue 10, principle 6): an old system and a new
// image full of symlinks that point out of their root — at the mount points,
// at /etc/passwd, at the old report, at the new report and log — must not make
// reimage mount, read or write anything outside the root. Each case ends in a
// clear refusal or a safe success, and the host paths the links name are
// checked untouched (and, for mounts, watched while the run goes on).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk, writeList } from '../helpers/fixtures.ts';
import { BIN, MOUNTS, copyBundle, readManifest, reimage, sharedBundle, writeManifest } from '../helpers/reimage.ts';
import { attachLoop, copySparse, describe, detachLoop, partNode, sha256, tmpDir, withLoop, withMount } from '../helpers/sys.ts';
import type { Result } from '../helpers/sys.ts';

const t = suite('confine');

const RUNDIR = process.env['REIMAGE_RUNDIR'] || '/run/reimage';

/** A host directory with one file, for links to point at; returns its path and a snapshot function. */
function hostDir(): { dir: string; file: string; snapshot: () => string } {
	const dir = path.join(tmpDir('reimage-host-'), 'x');
	fs.mkdirSync(dir);
	const file = path.join(dir, 'host-file');
	fs.writeFileSync(file, 'HOST FILE, never to be read or written by reimage\n');
	const snapshot = () =>
		fs
			.readdirSync(dir)
			.sort()
			.map((n) => `${n}:${fs.lstatSync(path.join(dir, n)).size}:${fs.readFileSync(path.join(dir, n), 'utf8')}`)
			.join('|');
	return { dir, file, snapshot };
}

/** Change the root file system of a disk image file (mounted rw through a loop device). */
async function onRootOf(disk: string, fn: (root: string) => void): Promise<void> {
	await withLoop(disk, (dev) => withMount(partNode(dev, 1), fn, { rw: true }));
}

/** Pack a copy of the fixture new image after `fn` changed its root file system. */
async function packChanged(fn: (root: string) => void): Promise<string> {
	const img = path.join(tmpDir('reimage-newimg-'), 'new.img');
	copySparse(fixtures().newImg, img);
	await onRootOf(img, fn);
	const out = path.join(tmpDir('reimage-bundle-'), 'bundle');
	const r = reimage(['pack', img, '--out', out, '--codec', 'zstd', ...MOUNTS.flatMap((m) => ['--mount', m])]);
	assert.is(r.status, 0, describe(r));
	return out;
}

/** The mount table lines whose mount point is `dir` or below it. */
const mountsAt = (dir: string) =>
	fs
		.readFileSync('/proc/self/mounts', 'utf8')
		.split('\n')
		.filter((l) => {
			const at = l.split(' ')[1] ?? '';
			return at === dir || at.startsWith(`${dir}/`);
		});

/**
 * Run the binary while watching the mount table every few milliseconds:
 * returns its result and every mount seen at the watched host paths or
 * under the run directory.
 */
async function runWatched(args: string[], watch: string[]): Promise<{ r: Result; seen: string[] }> {
	const seen = new Set<string>();
	const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	let stdout = '';
	let stderr = '';
	child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
	child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
	const timer = setInterval(() => {
		for (const d of [...watch, RUNDIR]) for (const l of mountsAt(d)) seen.add(l);
	}, 3);
	const [status, signal] = await new Promise<[number | null, string | null]>((res) => child.on('close', (c, s) => res([c, s])));
	clearInterval(timer);
	return { r: { status, signal, stdout, stderr }, seen: [...seen] };
}

/** Attach a fresh old disk changed by `plant`, run `fn`, detach. */
async function onPlantedOld(plant: (root: string) => void, fn: (dev: string) => Promise<void>): Promise<void> {
	const disk = freshOldDisk();
	await onRootOf(disk, plant);
	const dev = attachLoop(disk);
	try {
		await fn(dev);
	} finally {
		detachLoop(dev);
	}
}

const runArgs = (bundle: string, dev: string, list: string, ...extra: string[]) => [
	'run',
	'--bundle',
	bundle,
	'--target',
	dev,
	'--retain',
	list,
	'--yes',
	'--json',
	...extra,
];

// ------------------------------------------------------------ the old system

t('old /kiosk -> /../../HOST: not mounted over the host, warned, the run succeeds from the root file system', async () => {
	const host = hostDir();
	const before = host.snapshot();
	await onPlantedOld(
		(root) => {
			fs.rmSync(path.join(root, 'kiosk'), { recursive: true });
			fs.symlinkSync(`/../..${host.dir}`, path.join(root, 'kiosk'));
		},
		async (dev) => {
			const { r, seen } = await runWatched(runArgs(sharedBundle('zstd'), dev, writeList(['/etc/hostname'])), [host.dir]);
			assert.is(r.status, 0, describe(r));
			assert.equal(
				seen.filter((l) => l.split(' ')[1]?.startsWith(host.dir)),
				[],
				`a mount landed on the host:\n${seen.join('\n')}`,
			);
			assert.match(
				r.stderr,
				/old system: LABEL=data not mounted at \/kiosk: \/kiosk is a symbolic link \(-> \/\.\.\/\.\.\/tmp\/.*\), not a directory/,
			);
			// Every mount of the old system (and of the new one) stayed under the run directory, and the old one is nosuid,nodev,noexec.
			for (const l of seen) assert.ok(l.split(' ')[1]?.startsWith(RUNDIR), l);
			for (const l of seen.filter((x) => / \S+\/old(\/\S*)? /.test(x)))
				assert.match(l.split(' ')[3] ?? '', /(^|,)nosuid,nodev,noexec(,|$)/, l);
		},
	);
	assert.is(host.snapshot(), before);
});

t('old /etc/passwd -> HOST file: not read (owners kept by number, warned), the host file untouched', async () => {
	const host = hostDir();
	fs.writeFileSync(host.file, 'hostuser:x:1001:1001::/:/bin/sh\n');
	const before = host.snapshot();
	await onPlantedOld(
		(root) => {
			fs.rmSync(path.join(root, 'etc/passwd'));
			fs.symlinkSync(host.file, path.join(root, 'etc/passwd'));
		},
		async (dev) => {
			const r = reimage(runArgs(sharedBundle('zstd'), dev, writeList(['/srv/share/readme.txt'])));
			assert.is(r.status, 0, describe(r));
			assert.match(
				r.stderr,
				/old system: \/etc\/passwd is a symbolic link \(-> \/tmp\/.*host-file\), not followed: owners are kept by number/,
			);
			const e = (JSON.parse(r.stdout) as { entries: { path: string; old: { user?: string }; notes: string[] }[] }).entries[0]!;
			assert.is(e.old.user, undefined, 'the old owner name came from the host file');
			assert.ok(
				e.notes.some((n) => /uid 1001 has no name on the old system/.test(n)),
				e.notes.join('; '),
			);
		},
	);
	assert.is(host.snapshot(), before);
});

t('old /var/log/reimage/report.json -> HOST file: not read for anti-rollback, warned', async () => {
	const host = hostDir();
	fs.writeFileSync(host.file, JSON.stringify({ bundle: { version: '9999' } }));
	const before = host.snapshot();
	const out = path.join(tmpDir('reimage-ver-'), 'bundle');
	const p = reimage(['pack', fixtures().newImg, '--out', out, '--image-version', '2.0', ...MOUNTS.flatMap((m) => ['--mount', m])]);
	assert.is(p.status, 0, describe(p));
	await onPlantedOld(
		(root) => {
			fs.mkdirSync(path.join(root, 'var/log/reimage'), { recursive: true });
			fs.symlinkSync(host.file, path.join(root, 'var/log/reimage/report.json'));
		},
		async (dev) => {
			const r = reimage(runArgs(out, dev, fixtures().list));
			assert.is(r.status, 0, describe(r));
			assert.match(
				r.stderr,
				/old system: \/var\/log\/reimage\/report\.json is a symbolic link .*not followed: the installed version is unknown/,
			);
		},
	);
	assert.is(host.snapshot(), before);
});

// ------------------------------------------------------------ the new image

t(
	'new image: /var/log/reimage -> /../../escape and report.json, reimage.log -> HOST files: written inside the root, links replaced',
	async () => {
		const host = hostDir();
		fs.writeFileSync(path.join(host.dir, 'log-file'), 'HOST LOG\n');
		const before = host.snapshot();
		const bundle = await packChanged((root) => {
			fs.mkdirSync(path.join(root, 'escape'));
			fs.mkdirSync(path.join(root, 'var/log'), { recursive: true });
			fs.symlinkSync('/../../escape', path.join(root, 'var/log/reimage'));
			fs.symlinkSync(host.file, path.join(root, 'escape/report.json'));
			fs.symlinkSync(path.join(host.dir, 'log-file'), path.join(root, 'escape/reimage.log'));
		});
		const disk = freshOldDisk();
		await withLoop(disk, (dev) => {
			const r = reimage(runArgs(bundle, dev, fixtures().list));
			assert.is(r.status, 0, describe(r));
		});
		assert.is(host.snapshot(), before, 'a host file was written through a link in the new image');
		await onRootOf(disk, (root) => {
			assert.ok(fs.lstatSync(path.join(root, 'var/log/reimage')).isSymbolicLink(), "the image's own link is kept");
			for (const f of ['report.json', 'reimage.log'])
				assert.ok(fs.lstatSync(path.join(root, 'escape', f)).isFile(), `${f} is a file in the new root`);
			assert.is((JSON.parse(fs.readFileSync(path.join(root, 'escape/report.json'), 'utf8')) as { outcome: string }).outcome, 'success');
			assert.equal(fs.readdirSync(path.join(root, 'escape')).sort(), ['reimage.log', 'report.json'], 'no temporary file left');
		});
	},
);

t('new image: mount point /kiosk -> /../../HOST: refused after the write (11), nothing mounted on the host', async () => {
	const host = hostDir();
	const before = host.snapshot();
	const bundle = await packChanged((root) => {
		fs.rmSync(path.join(root, 'kiosk'), { recursive: true });
		fs.symlinkSync(`/../..${host.dir}`, path.join(root, 'kiosk'));
	});
	await withLoop(freshOldDisk(), async (dev) => {
		const { r, seen } = await runWatched(runArgs(bundle, dev, fixtures().list), [host.dir]);
		assert.equal(
			seen.filter((l) => l.split(' ')[1]?.startsWith(host.dir)),
			[],
			`a mount landed on the host:\n${seen.join('\n')}`,
		);
		assert.is(r.status, 11, describe(r));
		assert.match(
			r.stderr,
			/the new image's mount point for PARTLABEL=data: \/kiosk is a symbolic link \(-> \/\.\.\/\.\.\/tmp\/.*\), not a directory; mount points must be real directories inside the image/,
		);
		assert.not.match(r.stderr, /^\s+at /m);
		assert.equal(mountsAt(RUNDIR), [], 'mounts left behind');
	});
	assert.is(host.snapshot(), before);
});

// ------------------------------------------------------------ mount paths

t('manifest mount paths that are not normalised, or given twice, are refused (3), untouched', async () => {
	for (const [bad, re] of [
		[['/', '/../kiosk'], /mounts\.1\.path: mount path "\/\.\.\/kiosk" has a "\.\." component/],
		[['/', '//kiosk'], /mount path "\/\/kiosk" has an empty component/],
		[['/', '/kiosk/'], /mount path "\/kiosk\/" ends with a slash/],
		[['/', '/a/./kiosk'], /has a "\." component/],
		[['/', '/'], /mount path \/ is given twice/],
	] as const) {
		const b = copyBundle('zstd');
		const m = readManifest(b);
		m.mounts = m.mounts.map((x, i) => ({ ...x, path: bad[i]! }));
		writeManifest(b, m);
		await withLoop(freshOldDisk(), async (dev) => {
			const before = await sha256(dev);
			const r = reimage(runArgs(b, dev, fixtures().list));
			assert.is(r.status, 3, describe(r));
			assert.match(r.stderr, re);
			assert.is(await sha256(dev), before);
		});
	}
});

t('pack normalises mount paths (//kiosk/ -> /kiosk) and refuses ..; --old-mount refuses them too (2)', async () => {
	const out = path.join(tmpDir('reimage-norm-'), 'bundle');
	const ok = reimage(['pack', fixtures().newImg, '--out', out, '--mount', 'PARTLABEL=root://', '--mount', 'PARTLABEL=data://kiosk/./']);
	assert.is(ok.status, 0, describe(ok));
	assert.equal(
		readManifest(out)
			.mounts.map((m) => m.path)
			.sort(),
		['/', '/kiosk'],
	);
	const dots = reimage([
		'pack',
		fixtures().newImg,
		'--out',
		path.join(tmpDir('reimage-norm-'), 'b'),
		'--mount',
		'PARTLABEL=root:/',
		'--mount',
		'PARTLABEL=data:/../kiosk',
	]);
	assert.is(dots.status, 3, describe(dots));
	assert.match(dots.stderr, /--mount mount path "\/\.\.\/kiosk" for PARTLABEL=data is not an absolute path without "\.\."/);
	const twice = reimage([
		'pack',
		fixtures().newImg,
		'--out',
		path.join(tmpDir('reimage-norm-'), 'b'),
		'--mount',
		'PARTLABEL=root:/',
		'--mount',
		'PARTLABEL=data:/',
	]);
	assert.is(twice.status, 2, describe(twice));
	await withLoop(freshOldDisk(), (dev) => {
		for (const bad of ['PARTLABEL=data:/../x', 'PARTLABEL=data:/kiosk/']) {
			const r = reimage([
				'plan',
				'--bundle',
				sharedBundle('zstd'),
				'--target',
				dev,
				'--retain',
				fixtures().list,
				'--old-mount',
				'PARTLABEL=root:/',
				'--old-mount',
				bad,
			]);
			assert.is(r.status, 2, describe(r));
			assert.match(r.stderr, /--old-mount "PARTLABEL=data:\/.*": the path (has a "\.\." component|ends with a slash)/);
		}
	});
});

t.run();
