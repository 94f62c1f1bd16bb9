import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BigIntStats } from 'node:fs';
import { Manifest } from '../../../src/bundle/manifest.ts';
import { checkFit, destination, entryBytes, fitCheck, growSpare } from '../../../src/stages/fit.ts';
import { createLog } from '../../../src/util/log.ts';
import type { Found } from '../../../src/retention/scan.ts';
import { good } from '../_manifest.ts';

const MiB = 2 ** 20;
const st = (size: number, blocks = Math.ceil(size / 4096) * 8) =>
	({ size: BigInt(size), blocks: BigInt(blocks) }) as unknown as BigIntStats;
const file = (path: string, size: number, blocks?: number) => ({ path, kind: 'file', st: st(size, blocks) }) as Found;

function manifest(free = 70 * MiB) {
	const m = Manifest.parse(good());
	m.table.partitions[0]!.fs = { type: 'ext4', blockSize: 4096, freeBytes: 500 * MiB, freeInodes: 1000, size: 600 * MiB };
	m.table.partitions.push({
		number: 2,
		start: 4096,
		size: 100,
		type: 'L',
		fs: { type: 'ext4', blockSize: 1024, freeBytes: free, freeInodes: 3, size: 72 * MiB },
	});
	m.mounts.push({ path: '/kiosk', spec: { kind: 'LABEL', value: 'data' }, partition: 2, fstype: 'ext4' });
	return m;
}

test('destination: the deepest mount containing the path; /kiosk2 is not inside /kiosk', () => {
	const m = manifest();
	assert.is(destination(m.mounts, '/kiosk/config')?.path, '/kiosk');
	assert.is(destination(m.mounts, '/kiosk')?.path, '/kiosk');
	assert.is(destination(m.mounts, '/kiosk2/x')?.path, '/');
	assert.is(destination(m.mounts, '/etc/hostname')?.path, '/');
});

test('entryBytes: size rounded up to the block, a sparse file its allocation, a dir one block, a short symlink none', () => {
	assert.is(entryBytes({ kind: 'file', st: st(1) }, 4096), 4096);
	assert.is(entryBytes({ kind: 'file', st: st(0, 0) }, 4096), 0);
	assert.is(entryBytes({ kind: 'file', st: st(2 ** 30, 16 * 2048) }, 4096), 16 * MiB);
	assert.is(entryBytes({ kind: 'dir', st: st(4096) }, 1024), 1024);
	assert.is(entryBytes({ kind: 'symlink', st: st(20) }, 4096), 0);
	assert.is(entryBytes({ kind: 'symlink', st: st(200) }, 4096), 4096);
});

test('fitCheck sums per mount; a bundle without recorded sizes is reported as unknown', () => {
	const { needs } = fitCheck(manifest(), [file('/etc/a', 10), file('/kiosk/b', 1500), file('/kiosk/c', 1)]);
	assert.equal(
		needs.map((n) => [n.mount.path, n.bytes, n.inodes]),
		[
			['/', 4096, 1],
			['/kiosk', 3072, 2],
		],
	);
	const old = Manifest.parse(good());
	const r = fitCheck(old, [file('/etc/a', 10)]);
	assert.equal([r.needs.length, r.unknown.map((u) => u.path)], [0, ['/']]);
});

test('checkFit refuses (exit 5) naming the mount, the need and the free space; inodes too', () => {
	const log = createLog({ write: () => {} });
	const big = file('/kiosk/big', 100 * MiB);
	try {
		checkFit(manifest(), [big], log);
		assert.unreachable('should refuse');
	} catch (e) {
		assert.is((e as { code: number }).code, 5);
		assert.match(
			(e as Error).message,
			/^the retained entries for the new system's \/kiosk \(partition 2\) need 100 MiB \(104857600 bytes, the largest \/kiosk\/big\) but its file system has only 70 MiB \(73400320 bytes\) free/,
		);
	}
	try {
		checkFit(manifest(), [file('/kiosk/1', 1), file('/kiosk/2', 1), file('/kiosk/3', 1), file('/kiosk/4', 1)], log);
		assert.unreachable('should refuse');
	} catch (e) {
		assert.match((e as Error).message, /need 4 inodes but its file system has only 3 free/);
	}
	checkFit(manifest(), [file('/kiosk/small', MiB)], log);
});

test('with --grow the last partition counts the room beyond the image', () => {
	const m = manifest();
	m.table.partitions[1]!.start = 300000;
	const spare = growSpare(m, m.raw.size + 200 * MiB);
	assert.is(spare(2), 199 * MiB);
	assert.is(spare(1), 0);
	checkFit(m, [file('/kiosk/big', 100 * MiB)], createLog({ write: () => {} }), spare);
});

test.run();
