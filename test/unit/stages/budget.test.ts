// The RAM budget in pages and inodes: a 1-byte file takes a page, a hard link
// nothing, a sparse file its allocated blocks; the decoder's threads and
// frame slots are counted; the page size comes from the auxiliary vector.
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FRAME } from '../../../src/codecs/seekable.ts';
import type { Found } from '../../../src/retention/scan.ts';
import { ReimageError } from '../../../src/errors.ts';
import { budget, checkRam, filePages, HEADROOM, pageSize, WORKER_BYTES } from '../../../src/stages/budget.ts';
import type { BPath } from '../../../src/util/bytes.ts';

const P = 4096;
const st = (size: number, blocks = Math.ceil(size / 512), blksize = 4096) =>
	({ size: BigInt(size), blocks: BigInt(blocks), blksize: BigInt(blksize) }) as unknown as BigIntStats;
const file = (i: number, size: number, extra: Partial<Found> = {}): Found => ({
	path: `/f${i}` as BPath,
	host: `/h/f${i}` as BPath,
	kind: 'file',
	st: st(size),
	line: 1,
	sparse: false,
	...extra,
});

test('10,000 one-byte files need 10,000 pages and 10,000 inodes, not 10,000 bytes', () => {
	const found = Array.from({ length: 10_000 }, (_, i) => file(i, 1));
	const b = budget(0, found, P, 2);
	assert.is(b.filePages, 10_000);
	assert.is(b.files, 10_000);
	assert.ok(b.inodes >= 10_001 && b.inodes < 10_200, `inodes ${b.inodes}`);
	assert.ok(b.pages >= 10_000, `pages ${b.pages}`);
	assert.ok(b.need >= 10_000 * P + HEADROOM);
});

test('a hard link takes no page and no inode; directories and symlinks take no page', () => {
	const found: Found[] = [
		file(0, 10_000),
		file(1, 10_000, { linkOf: '/f0' as BPath }),
		{ ...file(2, 0), kind: 'dir' },
		{ ...file(3, 0), kind: 'symlink' },
	];
	const b = budget(0, found, P, 2);
	assert.is(b.filePages, 3);
	assert.is(b.files, 1);
	assert.is(b.entries, 4);
});

test('a sparse file is counted by its allocated blocks, never more than its size, at least a page', () => {
	const sparse = (size: number, blocks: number, blksize = 4096) => ({ st: st(size, blocks, blksize), sparse: true });
	assert.is(filePages(sparse(1 << 30, 8 * 4), P), 4, '16 KiB allocated in a 1 GiB file');
	// 1 KiB blocks: each may sit in its own page.
	assert.is(filePages(sparse(1 << 30, 2 * 4, 1024), P), 4);
	assert.is(filePages(sparse(100, 0), P), 1, 'inline data: no blocks, one page');
	assert.is(filePages({ st: st(0, 0), sparse: false }, P), 0);
	assert.is(filePages({ st: st(P + 1), sparse: false }, P), 2);
});

test('the decoder counts its threads and frame slots: 2 per worker + 2, at most 4 workers', () => {
	const two = budget(0, [], P, 2);
	assert.equal([two.workers, two.slots], [2, 6]);
	assert.is(two.decodeBytes, 2 * WORKER_BYTES + 6 * FRAME);
	const many = budget(0, [], P, 64);
	assert.equal([many.workers, many.slots], [4, 10]);
	assert.is(budget(100 << 20, [], P, 1).imagePages, 25_600);
});

test('the refusal states the budget in pages, inodes and bytes (exit 6)', async () => {
	const found = Array.from({ length: 1000 }, (_, i) => file(i, 1));
	const ok = await checkRam(1 << 20, found, async () => 64 * 2 ** 30);
	assert.is(ok.files, 1000);
	try {
		await checkRam(1 << 20, found, async () => 100 << 20);
		assert.unreachable('not refused');
	} catch (e) {
		assert.instance(e, ReimageError);
		const r = e as ReimageError;
		assert.is(r.exit, 'memory');
		assert.match(
			r.message,
			/^staging needs [\d.]+ MiB of RAM \(the RAM stage \d+ pages of [\d.]+ KiB: image \d+, 1000 retained files 1000; \d+ inodes; 1000 entries/,
		);
		assert.match(
			r.message,
			/the decoder [\d.]+ MiB: \d threads, \d+ frame slots of 8\.0 MiB; 192 MiB for the runtime\) but only 100 MiB is available: add RAM or retain less$/,
		);
		// The shape the VM test (vm/faults `not enough RAM`) looks for on the console.
		assert.match(r.message, /staging needs .* of RAM .* but only .* is available/);
	}
});

test('the page size is read from the auxiliary vector (AT_PAGESZ)', async () => {
	const proc = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-proc-'));
	try {
		fs.mkdirSync(path.join(proc, 'self'));
		const auxv = Buffer.alloc(48);
		const put = (off: number, v: bigint) => (os.endianness() === 'LE' ? auxv.writeBigUInt64LE(v, off) : auxv.writeBigUInt64BE(v, off));
		put(0, 16n);
		put(8, 0x1234n);
		put(16, 6n);
		put(24, 65536n);
		fs.writeFileSync(path.join(proc, 'self/auxv'), auxv);
		assert.is(await pageSize(proc), 65536);
		assert.is(await pageSize(path.join(proc, 'none')), 4096);
	} finally {
		fs.rmSync(proc, { recursive: true, force: true });
	}
	assert.ok([4096, 16384, 65536].includes(await pageSize()), 'the real page size');
});

test.run();
