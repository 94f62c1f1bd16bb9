// pack's input: a gzip-compressed whole-disk image (in-process codec: no
// processes) decoded into a sparse temp file; a compressed non-disk refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { rawInput } from '../../../src/bundle/input.ts';
import type { Log } from '../../../src/util/log.ts';

const log = { step: (_what: string, f: () => Promise<unknown>) => f(), info: () => {}, warn: () => {} } as unknown as Log;

function disk(): Buffer {
	const raw = Buffer.alloc(8 << 20);
	raw.writeUInt16LE(0xaa55, 510);
	raw[446 + 4] = 0x83;
	raw.writeUInt32LE(2048, 446 + 8);
	raw.writeUInt32LE(4096, 446 + 12);
	raw.fill(7, 5 << 20, (5 << 20) + 4096);
	return raw;
}

test('a gzip disk image (any name) is decoded to a sparse file in OUT, removed by done()', async () => {
	const dir = mkdtempSync(join(tmpdir(), 'reimage-input-'));
	const raw = disk();
	const file = join(dir, 'shipped.bin');
	writeFileSync(file, gzipSync(raw));
	const out = join(dir, 'out');
	const i = await rawInput(file, out, log);
	assert.is.not(i.path, file);
	assert.ok(readFileSync(i.path).equals(raw));
	// Two non-zero blocks (the MBR's and the 4 KiB of 7s) allocated; the rest is holes.
	assert.ok(statSync(i.path).blocks * 512 <= 64 << 10, `${statSync(i.path).blocks} blocks allocated`);
	await i.done();
	assert.equal(readdirSync(out), []);
	rmSync(dir, { recursive: true, force: true });
});

test('a raw image is used as it is; a compressed non-disk is refused naming the codec and why, nothing left', async () => {
	const dir = mkdtempSync(join(tmpdir(), 'reimage-input-'));
	const plain = join(dir, 'disk.img');
	writeFileSync(plain, disk());
	assert.is((await rawInput(plain, join(dir, 'o1'), log)).path, plain);
	const notDisk = join(dir, 'fs.img.gz');
	writeFileSync(notDisk, gzipSync(Buffer.alloc(1 << 20)));
	try {
		await rawInput(notDisk, join(dir, 'o2'), log);
		assert.unreachable('accepted');
	} catch (e) {
		assert.match(
			(e as Error).message,
			/fs\.img\.gz is gzip-compressed, but what it holds is not a whole-disk image \(it has no partition table/,
		);
	}
	const odd = join(dir, 'odd.gz');
	writeFileSync(odd, gzipSync(Buffer.alloc(1000)));
	await rawInput(odd, join(dir, 'o2'), log).then(
		() => assert.unreachable('accepted'),
		(e: Error) => assert.match(e.message, /\(1000 bytes, not a whole number of 512-byte sectors\)/),
	);
	assert.equal(readdirSync(join(dir, 'o2')), []);
	rmSync(dir, { recursive: true, force: true });
});

test.run();
