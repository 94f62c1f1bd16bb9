import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyDisk, writeBack } from '../../../src/capture/copy.ts';
import { createLog } from '../../../src/util/log.ts';

const KiB = 1024;
const log = createLog({ write: () => {} });

// A "disk" (a regular file): data in blocks 0, 3 and 10, a kept range over blocks 2-5.
function disk(dir: string): string {
	const f = join(dir, 'disk');
	const b = Buffer.alloc(64 * KiB);
	for (const blk of [0, 3, 10]) b.fill(blk + 1, blk * 4 * KiB, (blk + 1) * 4 * KiB);
	writeFileSync(f, b);
	return f;
}

test('the copy has every data block but the kept range, which stays a hole', async () => {
	const dir = mkdtempSync(join(tmpdir(), 'reimage-copy-'));
	const out = join(dir, 'raw');
	const { copied } = await copyDisk(disk(dir), 64 * KiB, out, [{ start: 8 * KiB, end: 24 * KiB }], log);
	const got = readFileSync(out);
	assert.is(got.length, 64 * KiB);
	assert.is(copied, 8 * KiB, 'blocks 0 and 10 only');
	assert.ok(got.subarray(0, 4 * KiB).every((x) => x === 1));
	assert.ok(
		got.subarray(8 * KiB, 24 * KiB).every((x) => x === 0),
		'the kept range is zeros',
	);
	assert.ok(got.subarray(40 * KiB, 44 * KiB).every((x) => x === 11));
	assert.ok(statSync(out).blocks * 512 < 64 * KiB, 'sparse');
});

test('writeBack puts only the differing blocks of the given ranges onto the disk', async () => {
	const dir = mkdtempSync(join(tmpdir(), 'reimage-copy-'));
	const d = disk(dir);
	const raw = join(dir, 'raw');
	const changed = readFileSync(d);
	changed.fill(7, 40 * KiB, 41 * KiB); // in the range
	changed.fill(9, 0, 10); // outside it
	writeFileSync(raw, changed);
	const n = await writeBack(raw, d, [{ start: 32 * KiB, end: 48 * KiB }]);
	assert.is(n, 4 * KiB);
	const after = readFileSync(d);
	assert.is(after[40 * KiB], 7);
	assert.is(after[0], 1, 'outside the ranges nothing is written');
});

test.run();
