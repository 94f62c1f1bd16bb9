// The writer's own rules, on a fake device: the fsync watermark of the
// buffered path, O_DIRECT for aligned blocks with the buffered fallback,
// and retries from the same buffer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants, type open } from 'node:fs/promises';
import { DIRTY_LIMIT, openWriter, WRITE_ATTEMPTS } from '../../../src/target/writer.ts';
import type { Disk } from '../../../src/target/sysfs.ts';

const disk = { path: '/dev/fake', node: '/dev/fake', name: 'fake', sectorSize: 512, size: 1 << 40 } as Disk;

type Call = { fd: string; op: 'write' | 'datasync' | 'sync' | 'close'; at?: number; len?: number };

// fakeDevice: an opener whose handles record every call; DIRECT=false makes
// the O_DIRECT open fail with EINVAL (a device or file system without it).
function fakeDevice(opts: { direct?: boolean; failWrites?: number } = {}) {
	const calls: Call[] = [];
	let failures = opts.failWrites ?? 0;
	const opener = (async (_path: string, flags: number) => {
		const fd = flags & constants.O_DIRECT ? 'direct' : 'buffered';
		if (fd === 'direct' && opts.direct === false) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
		return {
			write: async (buf: Buffer, _off: number, len: number, at: number) => {
				if (failures > 0) {
					failures--;
					throw Object.assign(new Error('I/O error'), { code: 'EIO' });
				}
				calls.push({ fd, op: 'write', at, len });
				return { bytesWritten: len, buffer: buf };
			},
			datasync: async () => void calls.push({ fd, op: 'datasync' }),
			sync: async () => void calls.push({ fd, op: 'sync' }),
			close: async () => void calls.push({ fd, op: 'close' }),
		};
	}) as unknown as typeof open;
	return { calls, opener };
}

// Bytes written to the buffered descriptor since its last sync, at its peak.
function mostDirty(calls: Call[]): number {
	let dirty = 0;
	let most = 0;
	for (const c of calls) {
		if (c.fd !== 'buffered') continue;
		if (c.op === 'write') most = Math.max(most, (dirty += c.len!));
		else if (c.op === 'datasync' || c.op === 'sync') dirty = 0;
	}
	return most;
}

test('without O_DIRECT, at most DIRTY_LIMIT bytes are written before a sync (the fsync watermark)', async () => {
	const { calls, opener } = fakeDevice({ direct: false });
	const w = await openWriter(disk, () => {}, opener);
	assert.is(w.direct, false);
	const block = Buffer.alloc(3 << 20);
	const total = 200 << 20;
	for (let at = 0; at < total; at += block.length) await w.write(block.subarray(0, Math.min(block.length, total - at)), at);
	assert.ok(mostDirty(calls) <= DIRTY_LIMIT, `${mostDirty(calls)} bytes were dirty at once`);
	// 21 blocks of 3 MiB fit under 64 MiB: a sync before every 22nd.
	assert.is(calls.filter((c) => c.op === 'datasync').length, Math.floor(total / block.length / Math.floor(DIRTY_LIMIT / block.length)));
	await w.sync();
	await w.close();
	assert.equal(
		calls.slice(-2).map((c) => c.op),
		['sync', 'close'],
	);
});

test('with O_DIRECT, aligned blocks bypass the cache; an unaligned piece goes buffered and counts toward the watermark', async () => {
	const { calls, opener } = fakeDevice();
	const w = await openWriter(disk, () => {}, opener);
	assert.is(w.direct, true);
	await w.write(Buffer.alloc(4 << 20), 0);
	await w.write(Buffer.alloc(1000), 4 << 20);
	assert.equal(
		calls.filter((c) => c.op === 'write').map((c) => [c.fd, c.len]),
		[
			['direct', 4 << 20],
			['buffered', 1000],
		],
	);
	// Unaligned writes never pile up past the watermark either.
	for (let i = 0; i < 100; i++) await w.write(Buffer.alloc((1 << 20) + 1), (8 << 20) + i * ((1 << 20) + 1));
	assert.ok(mostDirty(calls) <= DIRTY_LIMIT);
	assert.ok(calls.some((c) => c.op === 'datasync'));
	await w.sync();
	assert.equal(
		calls.filter((c) => c.op === 'sync').map((c) => c.fd),
		['buffered', 'direct'],
		'both descriptors are synced',
	);
});

test('a failed write is retried from the same buffer, then fails with the offset named', async () => {
	const warned: string[] = [];
	const once = fakeDevice({ failWrites: WRITE_ATTEMPTS - 1 });
	const w = await openWriter(disk, (l) => warned.push(l), once.opener);
	await w.write(Buffer.alloc(4096), 8192);
	assert.equal(
		once.calls.filter((c) => c.op === 'write').map((c) => c.at),
		[8192],
	);
	assert.is(warned.length, WRITE_ATTEMPTS - 1);
	assert.match(warned[0]!, /writing \/dev\/fake at byte 8192 failed \(EIO\); retrying from RAM/);

	const never = fakeDevice({ failWrites: WRITE_ATTEMPTS });
	const w2 = await openWriter(disk, () => {}, never.opener);
	const err = await w2.write(Buffer.alloc(4096), 8192).catch((e: Error) => e);
	assert.match((err as Error).message, `writing /dev/fake at byte 8192 failed ${WRITE_ATTEMPTS} times (EIO`);
});

test.run();
