// Pre-write faults from test/FAULTS.md that are not covered elsewhere: each
// leaves the target byte-identical and exits with its code. Also the happy
// paths of the checks involved (fingerprint match, compatible match, upgrade,
// read-back verification).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { frozenBundle, frozenDisk, holdingPart2, MOUNTS, reimage, RUNDIR, runActing, sharedBundle } from '../helpers/reimage.ts';
import type { Frozen } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, makeBlank, partNode, sfdiskJson, sh, sha256, tmpDir } from '../helpers/sys.ts';

const t = suite('faults');

async function onOldDisk(fn: (dev: string) => Promise<void> | void, disk = freshOldDisk()): Promise<void> {
	const dev = attachLoop(disk);
	try {
		await fn(dev);
	} finally {
		detachLoop(dev);
	}
}

async function refused(dev: string, args: string[], code: number, re: RegExp): Promise<void> {
	const before = await sha256(dev);
	const r = reimage(args);
	assert.is(r.status, code, describe(r));
	assert.match(r.stderr, re);
	assert.is(await sha256(dev), before, 'target byte-identical');
}

const runFrom = (bundle: string, dev: string, ...extra: string[]) => [
	'run',
	'--bundle',
	bundle,
	'--target',
	dev,
	'--retain',
	fixtures().list,
	'--yes',
	...extra,
];
const run = (dev: string, ...extra: string[]) => runFrom(sharedBundle('zstd'), dev, ...extra);

function versioned(version: string, compatible = 'kiosk-x86'): string {
	const out = path.join(tmpDir('reimage-ver-'), 'bundle');
	const r = reimage([
		'pack',
		fixtures().newImg,
		'--out',
		out,
		'--compatible',
		compatible,
		'--image-version',
		version,
		...MOUNTS.flatMap((m) => ['--mount', m]),
	]);
	assert.is(r.status, 0, describe(r));
	return out;
}

t('target too small by one sector -> 4', async () => {
	const file = path.join(tmpDir('reimage-small-'), 'disk.img');
	makeBlank(file, fs.statSync(fixtures().newImg).size - 512);
	await onOldDisk((dev) => refused(dev, run(dev), 4, /512 bytes too small/), file);
});

t('layout fingerprint: a match passes plan, a different disk is refused with a readable diff', async () => {
	const fp = path.join(tmpDir('reimage-fp-'), 'fp.json');
	await onOldDisk((dev) => {
		const r = reimage(['fingerprint', dev, '--out', fp]);
		assert.is(r.status, 0, describe(r));
		const p = reimage(['plan', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fixtures().list, '--fingerprint', fp]);
		assert.is(p.status, 0, describe(p));
	});
	// Same content, but another disk: a fresh copy of old.img gets the same table, so change its layout.
	const other = freshOldDisk();
	fs.truncateSync(other, fs.statSync(other).size + 2 ** 20);
	await onOldDisk(
		(dev) =>
			refused(
				dev,
				run(dev, '--fingerprint', fp),
				4,
				/does not match the recorded fingerprint .*disk size: recorded 335544320, found 336592896/,
			),
		other,
	);
});

t('a bundle for another device (compatible) -> 3', async () => {
	const b = versioned('2.0', 'atm-arm');
	await onOldDisk((dev) =>
		refused(
			dev,
			['run', '--bundle', b, '--target', dev, '--compatible', 'kiosk-x86', '--no-retain', '--yes'],
			3,
			/bundle is for "atm-arm" but this machine needs "kiosk-x86"/,
		),
	);
});

t('anti-rollback: installing 2.0 then 1.9 is refused (3) unless --allow-downgrade', async () => {
	await onOldDisk(async (dev) => {
		const first = reimage(['run', '--bundle', versioned('2.0'), '--target', dev, '--compatible', 'kiosk-x86', '--no-retain', '--yes']);
		assert.is(first.status, 0, describe(first));
		const older = versioned('1.9');
		await refused(
			dev,
			['run', '--bundle', older, '--target', dev, '--no-retain', '--yes'],
			3,
			/version 1\.9 is older than the installed 2\.0/,
		);
		const allowed = reimage(['run', '--bundle', older, '--target', dev, '--no-retain', '--yes', '--allow-downgrade']);
		assert.is(allowed.status, 0, describe(allowed));
	});
});

t('a second concurrent run on the same disk cannot start -> 4; a plan of it can', async () => {
	// The run dir the binary uses (REIMAGE_RUNDIR, as the tests are run), and the disk's lock in the format an older reimage wrote.
	fs.mkdirSync(RUNDIR, { recursive: true });
	await onOldDisk(async (dev) => {
		const lock = path.join(RUNDIR, `lock-${path.basename(dev)}`);
		fs.writeFileSync(lock, `${process.pid}\n`);
		try {
			await refused(dev, run(dev), 4, new RegExp(`another reimage \\(pid ${process.pid}\\) is running on this disk`));
			const plan = reimage(['plan', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fixtures().list]);
			assert.is(plan.status, 0, describe(plan));
			assert.match(
				plan.stderr,
				new RegExp(`another reimage \\(pid ${process.pid}\\) is running on ${dev} .*this plan reads a disk that is being rewritten`),
			);
		} finally {
			fs.rmSync(lock, { force: true });
		}
	});
});

t('two loop devices over one disk file are one disk: a run on the second while the first stages -> 4, the first succeeds', async () => {
	const file = freshOldDisk();
	const a = attachLoop(file);
	const b = attachLoop(file);
	// The first run's bundle on a frozen medium: it cannot get past saving the retained set (nor let its lock go) until thawed.
	const bundle = frozenBundle(sharedBundle('zstd'));
	try {
		let second: ReturnType<typeof reimage> | undefined;
		// The first run is stopped (SIGSTOP) while it stages, holding its lock, for as long as the second takes.
		const first = await runActing(runFrom(bundle.path, a), /== stage/, (pid) => {
			process.kill(pid, 'SIGSTOP');
			try {
				second = reimage(run(b));
			} finally {
				process.kill(pid, 'SIGCONT');
				bundle.thaw();
			}
			return () => {};
		});
		assert.is(first.status, 0, first.stderr);
		assert.ok(second, 'the second run was started while the first one ran');
		assert.is(second.status, 4, describe(second));
		assert.match(second.stderr, /another reimage \(pid \d+\) is running on this disk \(lock .*lock-file-[0-9a-f]{16}\)/, second.stderr);
	} finally {
		detachLoop(b);
		detachLoop(a);
		bundle.release();
	}
});

t('runs on different disks do not block each other: a run started while another one stages succeeds', async () => {
	const a = attachLoop(freshOldDisk());
	// The first run's bundle on a frozen medium: it holds its lock until thawed, after the second run.
	const bundle = frozenBundle(sharedBundle('zstd'));
	try {
		await onOldDisk(async (b) => {
			let second: ReturnType<typeof reimage> | undefined;
			// While the first run holds its disk's lock (it is staging), the second run goes through on its own disk.
			const first = await runActing(runFrom(bundle.path, a), /== stage/, () => {
				try {
					second = reimage(run(b));
				} finally {
					bundle.thaw();
				}
				return () => {};
			});
			assert.is(first.status, 0, first.stderr);
			assert.ok(second, 'the second run was started while the first one ran');
			assert.is(second.status, 0, describe(second));
		});
	} finally {
		detachLoop(a);
		bundle.release();
	}
});

t('--verify-written reads the disk back and says so', async () => {
	await onOldDisk((dev) => {
		const r = reimage(run(dev, '--verify-written', '--json'));
		assert.is(r.status, 0, describe(r));
		assert.match(r.stderr, /every byte checked .*, read back ok/);
		assert.is(JSON.parse(r.stdout).write.readBack, 'ok');
	});
});

t('a read-only target -> 4, untouched', async () => {
	const disk = freshOldDisk();
	const dev = attachLoop(disk, { readOnly: true });
	try {
		await refused(dev, run(dev), 4, /is read-only/);
	} finally {
		detachLoop(dev);
	}
});

t('retention caps: a file over the per-file cap, or a list over the total cap -> 5, untouched', async () => {
	await onOldDisk(async (dev) => {
		await refused(
			dev,
			run(dev, '--max-entry-size', '100'),
			5,
			/is 1\d\d B, over the per-file cap of 100 B: remove it from the list or raise the cap/,
		);
		await refused(dev, run(dev, '--max-retained', '300'), 5, /over the total cap of 300 B/);
		const r = reimage(run(dev, '--max-retained', 'lots'));
		assert.is(r.status, 2, describe(r));
	});
});

t('--old-mount names the old system when its labels differ from the new image', async () => {
	await onOldDisk((dev) => {
		const r = reimage(run(dev, '--old-mount', 'PARTLABEL=root:/', '--old-mount', 'PARTLABEL=data:/kiosk', '--json'));
		assert.is(r.status, 0, describe(r));
		assert.is(JSON.parse(r.stdout).entries.filter((e: { outcome: string }) => e.outcome === 'restored').length, 19);
		const wrong = reimage([
			'plan',
			'--bundle',
			sharedBundle('zstd'),
			'--target',
			dev,
			'--retain',
			fixtures().list,
			'--old-mount',
			'LABEL=elsewhere:/',
		]);
		assert.is(wrong.status, 5, describe(wrong));
		assert.match(wrong.stderr, /old system's root \(LABEL=elsewhere\) is not on/);
	});
});

t('a target with a partition in use as swap -> 4, untouched', async () => {
	await onOldDisk(async (dev) => {
		const p2 = partNode(dev, 2);
		sh('mkswap', ['-q', p2]);
		sh('swapon', [p2]);
		try {
			await refused(dev, run(dev), 4, /loop\d+p2 is in use as swap \(swapoff \/dev\/loop\d+p2\)/);
		} finally {
			sh('swapoff', [p2]);
		}
	});
});

t('a partition of the target open in another process -> 4, untouched, the process named', async () => {
	await onOldDisk(async (dev) => {
		const fd = fs.openSync(partNode(dev, 2), 'r');
		const holder = spawn('sleep', ['120'], { stdio: [fd, 'ignore', 'ignore'] });
		fs.closeSync(fd);
		try {
			await refused(
				dev,
				run(dev),
				4,
				new RegExp(`loop\\d+p2 is open in process ${holder.pid} \\(sleep\\)\\): unmount or stop what uses it first`),
			);
		} finally {
			holder.kill();
		}
	});
});

t("a partition opened only for a moment (a probe such as udev's blkid): waited for, the run goes on", async () => {
	await onOldDisk(async (dev) => {
		const fd = fs.openSync(partNode(dev, 2), 'r');
		const probe = spawn('sleep', ['1'], { stdio: [fd, 'ignore', 'ignore'] });
		fs.closeSync(fd);
		const r = reimage(run(dev));
		probe.kill();
		assert.is(r.status, 0, describe(r));
	});
});

t('a partition opened while the image is staged: the last look before the point of no return refuses (4), untouched', async () => {
	// The bundle's medium frozen: the run saves the retained set there before its last look, after the partition is open.
	const bundle = frozenBundle(sharedBundle('zstd'));
	try {
		await onOldDisk(async (dev) => {
			const before = await sha256(dev);
			const r = await holdingPart2(runFrom(bundle.path, dev), dev, bundle, /copy the image into RAM/);
			assert.ok(r.acted, 'the partition was opened after preflight');
			assert.is(r.status, 4, r.stderr);
			assert.match(r.stderr, new RegExp(`loop\\d+p2 is open in process ${process.pid} `));
			assert.not.match(r.stderr, /point of no return/);
			assert.is(await sha256(dev), before, 'target byte-identical');
		});
	} finally {
		bundle.release();
	}
});

/** FN on a fresh old disk on a frozen medium (frozenDisk): the run's first write waits until it is thawed. */
async function onFrozenOldDisk(fn: (dev: string, disk: Frozen) => Promise<void>): Promise<void> {
	const disk = frozenDisk(freshOldDisk());
	try {
		await onOldDisk((dev) => fn(dev, disk), disk.path);
	} finally {
		disk.release();
	}
}

t('a partition held open during the reread (EBUSY): bounded retries, the holder named, success once it lets go', async () => {
	await onFrozenOldDisk(async (dev, disk) => {
		const r = await holdingPart2(run(dev), dev, disk, /point of no return/, /not settled yet \(try 1\//);
		assert.ok(r.acted, 'the partition was opened after the point of no return');
		assert.is(r.status, 0, r.stderr);
		assert.match(r.stderr, new RegExp(`not settled yet \\(try 1/\\d+, disk busy: loop\\d+p2 is open in process ${process.pid} `));
		assert.match(r.stderr, /reimaged \/dev\/loop/);
	});
});

t('--verify-written on a disk that does not return what was written: one rewrite from RAM, then invalidation (10)', async () => {
	const disk = freshOldDisk();
	const dev = attachLoop(disk);
	try {
		// From the point of no return on, the file behind the loop device keeps
		// getting other bytes at the start of the root file system (a mapped
		// range): the disk "forgets" what was written there.
		const at = 2 ** 20 + 1024;
		const r = await runActing(run(dev, '--verify-written'), /point of no return/, () => {
			const fd = fs.openSync(disk, 'r+');
			const junk = Buffer.alloc(512, 0xa5);
			const timer = setInterval(() => fs.writeSync(fd, junk, 0, junk.length, at), 2);
			return () => {
				clearInterval(timer);
				fs.closeSync(fd);
			};
		});
		assert.ok(r.acted);
		assert.is(r.status, 10, r.stderr);
		assert.match(r.stderr, /read-back of \/dev\/loop\d+ does not match the image: rewriting once from RAM/);
		assert.match(r.stderr, /differs from what was written, twice: the disk is failing\); the disk was made unbootable on purpose/);
		const head = Buffer.alloc(2 ** 20);
		const fd = fs.openSync(dev, 'r');
		fs.readSync(fd, head, 0, head.length, 0);
		fs.closeSync(fd);
		assert.ok(
			head.every((b) => b === 0),
			'the first MiB (boot code, partition table) is zero',
		);
	} finally {
		detachLoop(dev);
	}
});

t('a partition held open through every reread: exit 11 naming the holder, the written image left whole', async () => {
	await onFrozenOldDisk(async (dev, disk) => {
		const r = await holdingPart2(run(dev), dev, disk, /point of no return/);
		assert.ok(r.acted, 'the partition was opened after the point of no return');
		assert.is(r.status, 11, r.stderr);
		assert.match(
			r.stderr,
			new RegExp(
				`do not match the table on it after \\d+ tries \\(disk busy: loop\\d+p2 is open in process ${process.pid} \\([^)]+\\)\\): stop what holds the disk, or reboot, and run reimage again`,
			),
		);
		// Not invalidated: the table on the disk is the new image's.
		assert.equal(
			sfdiskJson(dev).partitions.map((p) => p.start),
			sfdiskJson(fixtures().newImg).partitions.map((p) => p.start),
		);
	});
});

t.run();
