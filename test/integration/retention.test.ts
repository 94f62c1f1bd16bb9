// No retained entry is skipped silently, and the RAM stage is counted in the
// kernel's units. Each test plants something on the old system (a copy of
// old.img, mounted rw), runs the built binary, and either checks the target
// is byte-identical after a refusal or reads the new system back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freshOldDisk, writeList } from '../helpers/fixtures.ts';
import { reimage, sharedBundle } from '../helpers/reimage.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	exec,
	partNode,
	partNumberByName,
	partxUpdate,
	sfdiskJson,
	sh,
	sha256,
	withLoop,
	withMount,
} from '../helpers/sys.ts';
import type { Result } from '../helpers/sys.ts';

const t = suite('retention: nothing skipped silently, the RAM stage in pages and inodes');

const run = (dev: string, list: string, ...extra: string[]) =>
	reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', list, '--yes', ...extra]);

/** Change the old system's root file system (partition 1) of DISK. */
async function plant(disk: string, fn: (root: string) => void): Promise<void> {
	await withLoop(disk, (dev) => withMount(partNode(dev, 1), fn, { rw: true }));
}

/** No stack trace, exit CODE, and the message matches every pattern. */
function says(r: Result, code: number, ...patterns: RegExp[]): void {
	assert.is(r.status, code, describe(r));
	const out = r.stdout + r.stderr;
	assert.not.match(out, /^\s+at .+:\d+:\d+\)?$/m, `stack trace in output:\n${describe(r)}`);
	for (const p of patterns) assert.match(out, p, `output does not match ${p}:\n${describe(r)}`);
}

/** Run on DISK expecting a refusal: exit CODE, the target byte-identical, nothing left mounted. */
async function refused(disk: string, list: string, code: number, extra: string[], ...patterns: RegExp[]): Promise<void> {
	const dev = attachLoop(disk);
	try {
		const before = await sha256(dev);
		const r = run(dev, list, ...extra);
		says(r, code, ...patterns);
		assert.is(await sha256(dev), before, 'target changed although reimage refused');
		const left = fs
			.readFileSync('/proc/self/mounts', 'utf8')
			.split('\n')
			.filter((l) => l.startsWith(`${dev}p`));
		assert.equal(left, [], 'reimage left part of the target mounted');
	} finally {
		detachLoop(dev);
	}
}

/** Run on DISK expecting success; FN reads the new root file system. */
async function restored(disk: string, list: string, fn: (root: string, r: Result) => void, ...extra: string[]): Promise<void> {
	const dev = attachLoop(disk);
	try {
		const r = run(dev, list, '--json', ...extra);
		assert.is(r.status, 0, describe(r));
		partxUpdate(dev);
		const root = partNode(dev, partNumberByName(sfdiskJson(dev), 'root'));
		await withMount(root, (dir) => fn(dir, r));
	} finally {
		detachLoop(dev);
	}
}

// ------------------------------------------------------------ unreadable below a retained entry (exit 5)

t('a directory block failing its checksum below a retained directory -> 5 naming it, untouched', async () => {
	const disk = freshOldDisk();
	await plant(disk, (root) => {
		fs.mkdirSync(path.join(root, 'srv/keep/bad'), { recursive: true });
		for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(root, `srv/keep/bad/f${i}`), `${i}\n`);
		fs.writeFileSync(path.join(root, 'srv/keep/good'), 'good\n');
	});
	// Overwrite the directory's only block on the unmounted file system (1 KiB blocks).
	await withLoop(disk, (dev) => {
		const part = partNode(dev, 1);
		const blocks = sh('debugfs', ['-R', 'blocks /srv/keep/bad', part]).trim().split(/\s+/).map(Number);
		assert.ok(blocks.length === 1 && blocks[0]! > 0, `debugfs blocks: ${blocks.join(' ')}`);
		const bs = Number(/Block size:\s+(\d+)/.exec(sh('dumpe2fs', ['-h', part]))?.[1]);
		const fd = fs.openSync(part, 'r+');
		try {
			fs.writeSync(fd, Buffer.alloc(bs, 0x5a), 0, bs, blocks[0]! * bs);
			fs.fsyncSync(fd);
		} finally {
			fs.closeSync(fd);
		}
	});
	const list = writeList(['/etc/hostname', '/srv/keep']);
	await refused(disk, list, 5, [], /\/srv\/keep\/bad/, /list line 2/, /EBADMSG|EUCLEAN|EIO/, /fsck/);
});

t('a path longer than PATH_MAX below a retained directory -> 5 naming it, untouched', async () => {
	const disk = freshOldDisk();
	await plant(disk, (root) => {
		const here = process.cwd();
		try {
			fs.mkdirSync(path.join(root, 'srv/deep'), { recursive: true });
			process.chdir(path.join(root, 'srv/deep'));
			// 18 levels of 240 bytes: the deepest paths pass 4096 bytes, the kernel's PATH_MAX.
			for (let i = 0; i < 18; i++) {
				const name = `${String(i).padStart(2, '0')}${'d'.repeat(238)}`;
				fs.mkdirSync(name);
				process.chdir(name);
			}
			fs.writeFileSync('key', 'deep\n');
		} finally {
			process.chdir(here);
		}
	});
	const list = writeList(['/etc/hostname', '/srv/deep']);
	await refused(disk, list, 5, [], /\/srv\/deep\/00d+/, /list line 2/, /ENAMETOOLONG/);
});

// ------------------------------------------------------------ special files while walking: skipped, reported

t('a FIFO and a device node inside a retained directory are skipped and reported; the rest is restored', async () => {
	const disk = freshOldDisk();
	await plant(disk, (root) => {
		fs.mkdirSync(path.join(root, 'srv/keep'), { recursive: true });
		fs.writeFileSync(path.join(root, 'srv/keep/data'), 'kept\n');
		sh('mkfifo', [path.join(root, 'srv/keep/fifo')]);
		sh('mknod', [path.join(root, 'srv/keep/null'), 'c', '1', '3']);
	});
	await restored(disk, writeList(['/etc/hostname', '/srv/keep']), (root, r) => {
		assert.is(fs.readFileSync(path.join(root, 'srv/keep/data'), 'utf8'), 'kept\n');
		assert.not.ok(fs.existsSync(path.join(root, 'srv/keep/fifo')), 'the FIFO was restored');
		const report = JSON.parse(r.stdout) as { entries: { path: string; outcome: string; reason?: string }[] };
		const skipped = report.entries.filter((e) => e.outcome === 'skipped');
		assert.equal(skipped.map((e) => e.path).sort(), ['/srv/keep/fifo', '/srv/keep/null']);
		assert.match(skipped.find((e) => e.path === '/srv/keep/fifo')?.reason ?? '', /FIFO/);
		assert.match(r.stderr, /skipped \/srv\/keep\/fifo \(list line 2\)/, 'no warning in the log');
	});
});

// ------------------------------------------------------------ hard links and sparse files

t('hard links stay linked and sparse files stay sparse', async () => {
	const disk = freshOldDisk();
	const data = Buffer.alloc(64 << 10, 0xa5);
	await plant(disk, (root) => {
		const keep = path.join(root, 'srv/keep');
		fs.mkdirSync(path.join(keep, 'sub'), { recursive: true });
		fs.writeFileSync(path.join(keep, 'a'), 'linked\n');
		fs.linkSync(path.join(keep, 'a'), path.join(keep, 'sub/b'));
		fs.linkSync(path.join(keep, 'a'), path.join(keep, 'c'));
		// 48 MiB apparent, 128 KiB of data: at 1 MiB and at the very end of a hole.
		const fd = fs.openSync(path.join(keep, 'sparse'), 'w');
		fs.writeSync(fd, data, 0, data.length, 1 << 20);
		fs.writeSync(fd, data, 0, data.length, (48 << 20) - data.length);
		fs.closeSync(fd);
		fs.writeFileSync(path.join(keep, 'tail'), '');
		fs.truncateSync(path.join(keep, 'tail'), 8 << 20);
	});
	await restored(disk, writeList(['/etc/hostname', '/srv/keep']), (root) => {
		const keep = path.join(root, 'srv/keep');
		const a = fs.statSync(path.join(keep, 'a'));
		assert.is(a.nlink, 3, 'link count of /srv/keep/a');
		assert.is(fs.statSync(path.join(keep, 'sub/b')).ino, a.ino, '/srv/keep/sub/b is not a link to /srv/keep/a');
		assert.is(fs.statSync(path.join(keep, 'c')).ino, a.ino, '/srv/keep/c is not a link to /srv/keep/a');
		assert.is(fs.readFileSync(path.join(keep, 'c'), 'utf8'), 'linked\n');
		const sp = fs.statSync(path.join(keep, 'sparse'));
		assert.is(sp.size, 48 << 20);
		assert.ok(sp.blocks * 512 < 1 << 20, `sparse file inflated: ${sp.blocks * 512} bytes allocated`);
		const got = fs.readFileSync(path.join(keep, 'sparse'));
		const want = Buffer.alloc(48 << 20);
		data.copy(want, 1 << 20);
		data.copy(want, (48 << 20) - data.length);
		assert.ok(got.equals(want), 'sparse file bytes differ');
		const tail = fs.statSync(path.join(keep, 'tail'));
		assert.is(tail.size, 8 << 20, 'a file that is one hole keeps its size');
		assert.is(tail.blocks, 0, 'a file that is one hole got blocks');
	});
});

// ------------------------------------------------------------ entries: pages, inodes, the cap

t('10,000 one-byte entries are staged (a page each) and restored', async () => {
	const disk = freshOldDisk();
	await plant(disk, (root) => {
		fs.mkdirSync(path.join(root, 'srv/many'), { recursive: true });
		for (let i = 0; i < 10_000; i++) fs.writeFileSync(path.join(root, `srv/many/${i}`), 'x');
	});
	await restored(disk, writeList(['/etc/hostname', '/srv/many']), (root) => {
		const names = fs.readdirSync(path.join(root, 'srv/many'));
		assert.is(names.length, 10_000);
		assert.is(fs.readFileSync(path.join(root, 'srv/many/9999'), 'utf8'), 'x');
	});
});

t('more entries than --max-entries -> 5 naming the cap, untouched', async () => {
	const disk = freshOldDisk();
	await plant(disk, (root) => {
		fs.mkdirSync(path.join(root, 'srv/many'), { recursive: true });
		for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(root, `srv/many/${i}`), 'x');
	});
	await refused(
		disk,
		writeList(['/etc/hostname', '/srv/many']),
		5,
		['--max-entries', '20'],
		/more than 20 entries/,
		/--max-entries/,
		/list line 2/,
	);
});

t('--max-entries that is not a number -> 2', async () => {
	const disk = freshOldDisk();
	await refused(disk, writeList(['/etc/hostname']), 2, ['--max-entries', '10k'], /--max-entries 10k is not a positive whole number/);
});

t('nothing of the stage is left mounted after a run', () => {
	const base = process.env['REIMAGE_RUNDIR'] ?? '/run/reimage';
	const left = exec('findmnt', ['-n', '-t', 'tmpfs', '-o', 'TARGET'])
		.stdout.split('\n')
		.filter((l) => l.startsWith(`${base}/`));
	assert.equal(left, []);
});

t.run();
