import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReimageError } from '../../../src/errors.ts';
import { atLeast, checkKernel, featureProblem, kernelRefusal, readKernel, type KernelFacts } from '../../../src/target/kernel.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';
import { Manifest } from '../../../src/bundle/manifest.ts';
import { good } from '../_manifest.ts';

const kernel = (release: string, more: Partial<KernelFacts> = {}): KernelFacts => ({
	release,
	filesystems: new Set(['ext4', 'ext3', 'ext2', 'tmpfs']),
	aliases: new Set(),
	...more,
});

const withFeatures = (features: string[], fstype = 'ext4') => {
	const m = Manifest.parse(good());
	m.table.partitions[0]!.fs.features = features;
	m.mounts[0]!.fstype = fstype;
	return m;
};

test('atLeast compares kernel releases numerically', () => {
	assert.ok(atLeast('6.1.0-57-amd64', '5.2'));
	assert.ok(atLeast('5.2.0', '5.2'));
	assert.not.ok(atLeast('4.19.0-26-amd64', '5.2'));
	assert.not.ok(atLeast('3.10', '3.18'));
	assert.ok(atLeast('3.18', '3.10'));
});

test('features: compat ones never block; versioned ones by release; sysfs decides where the kernel lists the feature; unknown refused', () => {
	assert.is(featureProblem('has_journal', kernel('2.6.32')), undefined);
	assert.is(featureProblem('metadata_csum', kernel('6.1.0')), undefined);
	assert.is(featureProblem('metadata_csum', kernel('3.16.0')), 'it needs Linux 3.18 or later');
	assert.is(featureProblem('casefold', kernel('5.10.0')), undefined);
	assert.match(
		featureProblem('casefold', kernel('6.18.0', { ext4Features: new Set(['encryption']) })) ?? '',
		/\/sys\/fs\/ext4\/features has no casefold/,
	);
	assert.is(featureProblem('encrypt', kernel('6.18.0', { ext4Features: new Set(['encryption']) })), undefined);
	assert.is(featureProblem('dirdata', kernel('6.18.0')), 'no mainline kernel mounts it read-write');
	assert.match(featureProblem('not_a_feature', kernel('6.18.0')) ?? '', /does not know this feature/);
	assert.match(featureProblem('FEATURE_I31', kernel('6.18.0')) ?? '', /does not know this feature/);
});

test('kernelRefusal names the partition, its mount, the feature and the release', () => {
	assert.is(kernelRefusal(withFeatures(['extent', '64bit', 'metadata_csum']), kernel('4.19.0')), undefined);
	assert.match(
		kernelRefusal(withFeatures(['extent', 'orphan_present']), kernel('5.10.0-30-amd64')) ?? '',
		/^partition 1 of the image \(\/\) has the ext4 feature "orphan_present", which the running kernel 5\.10\.0-30-amd64 cannot mount \(it needs Linux 5\.15 or later\): .*tune2fs -O \^orphan_present\)$/,
	);
	// A bundle from before pack recorded features: only the type is checked.
	assert.is(kernelRefusal(Manifest.parse(good()), kernel('4.19.0')), undefined);
});

test('the file system type must be listed in /proc/filesystems or loadable as an fs- module alias', () => {
	assert.match(
		kernelRefusal(withFeatures([], 'btrfs'), kernel('6.1.0')) ?? '',
		/holds a btrfs file system, which the running kernel 6\.1\.0 cannot mount/,
	);
	assert.is(kernelRefusal(withFeatures([], 'btrfs'), kernel('6.1.0', { aliases: new Set(['btrfs']) })), undefined);
});

test('readKernel reads the release, /proc/filesystems, modules.alias and /sys/fs/ext4/features from injectable roots', async () => {
	const root = mkdtempSync(join(tmpdir(), 'reimage-kernel-'));
	const roots = { proc: join(root, 'proc'), sys: join(root, 'sys'), modules: join(root, 'modules') };
	mkdirSync(join(roots.proc, 'sys/kernel'), { recursive: true });
	writeFileSync(join(roots.proc, 'sys/kernel/osrelease'), '6.1.0-57-amd64\n');
	writeFileSync(join(roots.proc, 'filesystems'), 'nodev\ttmpfs\n\text4\n\text2\n');
	mkdirSync(join(roots.modules, '6.1.0-57-amd64'), { recursive: true });
	writeFileSync(join(roots.modules, '6.1.0-57-amd64/modules.alias'), 'alias fs-vfat vfat\nalias fs-btrfs btrfs\nalias pci:v* foo\n');
	let k = await readKernel(roots);
	assert.is(k.release, '6.1.0-57-amd64');
	assert.equal([...k.filesystems].sort(), ['ext2', 'ext4', 'tmpfs']);
	assert.equal([...k.aliases].sort(), ['btrfs', 'vfat']);
	assert.is(k.ext4Features, undefined);
	mkdirSync(join(roots.sys, 'fs/ext4/features'), { recursive: true });
	writeFileSync(join(roots.sys, 'fs/ext4/features/encryption'), 'supported\n');
	k = await readKernel(roots);
	assert.equal([...(k.ext4Features ?? [])], ['encryption']);
	rmSync(root, { recursive: true, force: true });
});

test('checkKernel on the fake Sys: a file system the kernel lacks, and an ext4 feature it lacks, are refused (exit 8) before anything is written', async () => {
	const f = fakeSys();
	f.file('proc/sys/kernel/osrelease', '6.1.0-57-amd64').file('proc/filesystems', 'nodev\ttmpfs\n\text4\n\tvfat');
	f.file('modules/6.1.0-57-amd64/modules.alias', 'alias fs-xfs xfs').file('sys/fs/ext4/features/metadata_csum_seed', 'supported');
	const m = (type: string, features: string[] = []) => ({
		mounts: [{ path: '/', partition: 2, fstype: type }],
		table: { partitions: [{ number: 2, fs: { type, features } }] },
	});
	await checkKernel(m('ext4', ['extent', 'metadata_csum_seed']), f);
	await checkKernel(m('xfs'), f);
	let e = await checkKernel(m('btrfs'), f).catch((x: unknown) => x);
	assert.instance(e, ReimageError);
	assert.is((e as ReimageError).exit, 'environment');
	assert.match(
		(e as Error).message,
		/partition 2 of the image \(\/\) holds a btrfs file system, which the running kernel 6\.1\.0-57-amd64 cannot mount/,
	);
	e = await checkKernel(m('ext4', ['casefold']), f).catch((x: unknown) => x);
	assert.match((e as Error).message, /the ext4 feature "casefold".*\/sys\/fs\/ext4\/features has no casefold/);
	assert.equal(f.calls, []);
	f.done();
});

test.run();
