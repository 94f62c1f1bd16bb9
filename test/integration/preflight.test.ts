// Everything knowable before the point of no return is refused there: the
// disk's sector size, the image's own partition table against the manifest,
// room for the retained set in the new file systems, file system features the
// kernel cannot mount, a partition backing a loop device, an MBR extended
// partition the image does not have, and a stale old table. Each refusal leaves the target
// byte-identical and says why in one sentence.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk, writeList } from '../helpers/fixtures.ts';
import { BIN, copyBundle, readManifest, reimage, writeManifest } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, exec, partNode, sh, sha256, tmpDir, withMount } from '../helpers/sys.ts';
import type { Result } from '../helpers/sys.ts';

const t = suite('preflight refuses what it can know before writing');

type Part = { number: number; size: number; type: string; fs: Record<string, unknown> };
type Table = { label: string; partitions: Part[] };

// LIST '' keeps nothing (--no-retain: an empty list is refused by the retention guard).
const run = (bundle: string, dev: string, list: string = fixtures().list, ...extra: string[]) =>
	reimage(['run', '--bundle', bundle, '--target', dev, ...(list ? ['--retain', list] : ['--no-retain']), '--yes', ...extra]);

/** Hash DEV, act, check the exit code and the message, hash again. */
async function refused(dev: string, act: () => Result, code: number, message: RegExp): Promise<Result> {
	const before = await sha256(dev);
	const r = act();
	assert.is(r.status, code, describe(r));
	assert.match(r.stderr, message, describe(r));
	assert.not.match(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
	assert.not.match(r.stderr, /point of no return/, 'refused before the point of no return');
	assert.is(await sha256(dev), before, 'target changed although reimage refused');
	const runBase = process.env['REIMAGE_RUNDIR'] || '/run/reimage';
	const left = fs
		.readFileSync('/proc/self/mounts', 'utf8')
		.split('\n')
		.filter((l) => l.split(' ')[1]?.startsWith(`${runBase}/`) || l.startsWith(`${dev}p`));
	assert.equal(left, [], 'reimage left a mount behind (the RAM stage, the old system)');
	return r;
}

function editTable(bundle: string, edit: (t: Table) => void): void {
	const m = readManifest(bundle);
	edit(m.table as Table);
	writeManifest(bundle, m);
	for (const f of ['manifest.json.sig', 'manifest.json.minisig']) fs.rmSync(path.join(bundle, f), { force: true });
}

t('a 512-byte image on a disk with 4096-byte logical sectors -> 4, untouched', async () => {
	const disk = freshOldDisk();
	const dev = sh('losetup', ['-f', '--show', '--sector-size', '4096', disk]).trim();
	try {
		await refused(
			dev,
			() => run(copyBundle('zstd'), dev),
			4,
			/has 4096-byte logical sectors but the image's partition table is made for 512-byte sectors/,
		);
	} finally {
		sh('losetup', ['-d', dev]);
	}
});

t("the manifest's table differs from the image's own (partition 2 smaller) -> 3 in run and plan, untouched", async () => {
	const b = copyBundle('zstd');
	editTable(b, (tb) => {
		tb.partitions[1]!.size -= 2048;
	});
	const dev = attachLoop(freshOldDisk());
	try {
		const want = /table\.partitions\[number=2\]\.size: the manifest says \d+, the image's own table says \d+/;
		await refused(dev, () => run(b, dev), 3, want);
		await refused(dev, () => reimage(['plan', '--bundle', b, '--target', dev, '--retain', fixtures().list]), 3, want);
	} finally {
		detachLoop(dev);
	}
});

t('a 100 MiB retained file for a 70 MiB partition -> 5 naming the mount, untouched', async () => {
	const disk = freshOldDisk();
	const dev = attachLoop(disk);
	try {
		// The old data partition (mounted at /kiosk) gets a 100 MiB file.
		await withMount(partNode(dev, 2), (dir) => sh('dd', ['if=/dev/urandom', `of=${dir}/big`, 'bs=1M', 'count=100', 'status=none']), {
			rw: true,
		});
		const list = writeList(['/etc/machine-id', '/kiosk/big']);
		await refused(
			dev,
			() => run(copyBundle('zstd'), dev, list),
			5,
			/the retained entries for the new system's \/kiosk \(partition 2\) need 100 MiB \(\d+ bytes, the largest \/kiosk\/big\) but its file system has only \d+ MiB \(\d+ bytes\) free/,
		);
	} finally {
		detachLoop(dev);
	}
});

t('a bundle from before pack recorded free space: the fit check is skipped with a log line', async () => {
	const b = copyBundle('zstd');
	editTable(b, (tb) => {
		for (const p of tb.partitions) for (const k of ['size', 'blockSize', 'freeBytes', 'freeInodes', 'features']) delete p.fs[k];
	});
	const dev = attachLoop(freshOldDisk());
	try {
		const r = reimage(['plan', '--bundle', b, '--target', dev, '--retain', fixtures().list]);
		assert.is(r.status, 0, describe(r));
		assert.match(r.stderr, /the manifest records no free space for \/ \(partition 1, .*not checked whether the retained entries fit/);
	} finally {
		detachLoop(dev);
	}
});

t('an ext4 feature the running kernel does not know (manifest edited) -> 8 naming partition, feature and kernel, untouched', async () => {
	const b = copyBundle('zstd');
	editTable(b, (tb) => {
		(tb.partitions[1]!.fs['features'] as string[]).push('not_a_feature');
	});
	const dev = attachLoop(freshOldDisk());
	try {
		const release = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
		const esc = release.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
		await refused(
			dev,
			() => run(b, dev),
			8,
			new RegExp(
				`partition 2 of the image \\(/kiosk\\) has the ext4 feature "not_a_feature", which the running kernel ${esc} cannot mount`,
			),
		);
	} finally {
		detachLoop(dev);
	}
});

t('a partition of the target backing another loop device (no holder, no process) -> 4 naming it and losetup -d, untouched', async () => {
	const dev = attachLoop(freshOldDisk());
	const inner = sh('losetup', ['-f', '--show', partNode(dev, 2)]).trim();
	try {
		await refused(
			dev,
			() => run(copyBundle('zstd'), dev),
			4,
			new RegExp(`loop\\d+p2 backs the loop device ${path.basename(inner)} \\(losetup -d ${inner}\\)`),
		);
	} finally {
		sh('losetup', ['-d', inner]);
		detachLoop(dev);
	}
});

/** A 64 MiB MBR image: ext4 "root" in partition 1 (with SPEC), plus whatever EXTRA sfdisk lines say. */
function mbrImage(extra: string): string {
	const img = path.join(tmpDir('reimage-mbr-'), 'mbr.img');
	sh('truncate', ['-s', '64M', img]);
	sh('sfdisk', ['-q', img], { input: `label: dos\nstart=2048, size=40960, type=83\n${extra}` });
	sh('mkfs.ext4', ['-q', '-F', '-L', 'root', '-E', `offset=${2048 * 512}`, img, '20480k']);
	return img;
}

t('run refuses a manifest whose MBR table names an extended partition the image lacks (edited, unsigned) -> 3, untouched', async () => {
	const img = mbrImage('');
	const b = path.join(tmpDir(), 'b');
	sh(BIN, ['pack', img, '--out', b, '--codec', 'gzip', '--mount', 'LABEL=root:/']);
	editTable(b, (tb) => {
		tb.partitions.push({ number: 2, size: 2048, type: '5', fs: {}, start: 43008 } as Part);
	});
	const dev = attachLoop(freshOldDisk());
	try {
		await refused(dev, () => run(b, dev, ''), 3, /the manifest names partition 2, the image's own table has no such partition/);
	} finally {
		detachLoop(dev);
	}
});

/** The old disk cut to 250 MiB: its GPT (made for 320 MiB) is no longer valid, or (dos) partition 2 ends past the end. */
function staleDisk(label: 'gpt' | 'dos'): string {
	const disk = freshOldDisk();
	if (label === 'dos') {
		const parts = (JSON.parse(sh('sfdisk', ['--json', disk])) as { partitiontable: { partitions: { start: number; size: number }[] } })
			.partitiontable.partitions;
		const lines = parts.map((p) => `start=${p.start}, size=${p.size}, type=83`).join('\n');
		sh('sfdisk', ['-q', '--wipe', 'always', disk], { input: `label: dos\n${lines}\n` });
	}
	sh('truncate', ['-s', '250M', disk]);
	return disk;
}

for (const label of ['gpt', 'dos'] as const) {
	t(
		`a stale old table (${label}, made for a larger disk): with entries to read -> 4 with the real reason, untouched; with none -> reimaged with a warning`,
		async () => {
			const dev = attachLoop(staleDisk(label));
			try {
				const real =
					label === 'gpt'
						? /is a GPT that is not valid on this disk/
						: /says partition 2 ends at sector \d+, past the disk's end \(512000 sectors of 512 bytes\)/;
				const r = await refused(dev, () => run(copyBundle('zstd'), dev), 4, real);
				assert.match(
					r.stderr,
					/so the retained files cannot be read from the old system: repair the old table, or reimage without retaining anything/,
				);
				assert.not.match(r.stderr, /stop what holds the disk/);
				const ok = run(copyBundle('zstd'), dev, '');
				assert.is(ok.status, 0, describe(ok));
				assert.match(ok.stderr, /warning: the old partition table of \/dev\/loop\d+ .*nothing is read from the old system/);
				assert.is((JSON.parse(sh('sfdisk', ['--json', dev])) as { partitiontable: { label: string } }).partitiontable.label, 'gpt');
			} finally {
				detachLoop(dev);
			}
		},
	);
}

t('an old system on MBR whose root is a logical partition (in an extended one) is read: plan exits 0, nothing written', async () => {
	// The root file system stays where it is; the table around it becomes MBR:
	// an extended partition holding it as logical partition 5, data as primary 2.
	const disk = freshOldDisk();
	sh('sfdisk', ['-q', '--wipe', 'always', disk], {
		input: 'label: dos\nstart=1024,size=328704,type=5\nstart=329728,size=323584,type=83\nstart=2048,size=327680,type=83\n',
	});
	const dev = attachLoop(disk);
	try {
		const before = await sha256(dev);
		const list = writeList(['/etc/machine-id']);
		const r = reimage(['plan', '--bundle', copyBundle('zstd'), '--target', dev, '--retain', list, '--old-mount', 'LABEL=root:/']);
		assert.is(r.status, 0, describe(r));
		assert.match(r.stderr, /retention: 1 entries/);
		assert.not.match(r.stderr, /not settled yet/);
		assert.is(await sha256(dev), before, 'plan wrote to the disk');
	} finally {
		detachLoop(dev);
	}
});

t.after(() => {
	exec('sync', []);
});

t.run();
