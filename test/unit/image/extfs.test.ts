import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSuperblock } from '../../../src/image/extfs.ts';

function superblock(o: {
	log: number;
	blocks: number;
	free: number;
	freeInodes: number;
	compat: number;
	incompat: number;
	ro: number;
	hiBlocks?: number;
	hiFree?: number;
}): Buffer {
	const sb = Buffer.alloc(1024);
	sb.writeUInt32LE(o.blocks, 0x4);
	sb.writeUInt32LE(o.free, 0xc);
	sb.writeUInt32LE(o.freeInodes, 0x10);
	sb.writeUInt32LE(o.log, 0x18);
	sb.writeUInt16LE(0xef53, 0x38);
	sb.writeUInt32LE(o.compat, 0x5c);
	sb.writeUInt32LE(o.incompat, 0x60);
	sb.writeUInt32LE(o.ro, 0x64);
	sb.writeUInt32LE(o.hiBlocks ?? 0, 0x150);
	sb.writeUInt32LE(o.hiFree ?? 0, 0x158);
	return sb;
}

test('an ext4 superblock: sizes in bytes, free inodes, features by their e2fsprogs names', () => {
	const info = parseSuperblock(
		superblock({ log: 2, blocks: 1000, free: 600, freeInodes: 77, compat: 0x4 | 0x20, incompat: 0x2 | 0x40 | 0x20000, ro: 0x400 }),
	);
	assert.equal(info, {
		size: 4096000,
		blockSize: 4096,
		freeBytes: 2457600,
		freeInodes: 77,
		features: ['has_journal', 'dir_index', 'filetype', 'extent', 'casefold', 'metadata_csum'],
	});
});

test('64bit: the high words count; without 64bit they are ignored; unknown bits get FEATURE_ names', () => {
	const wide = parseSuperblock(
		superblock({ log: 2, blocks: 0, free: 0, freeInodes: 1, compat: 0, incompat: 0x80 + 0x80000000, ro: 0x40000, hiBlocks: 1, hiFree: 1 }),
	);
	assert.is(wide?.size, 2 ** 32 * 4096);
	assert.is(wide?.freeBytes, 2 ** 32 * 4096);
	assert.equal(wide?.features, ['64bit', 'FEATURE_I31', 'FEATURE_R18']);
	const narrow = parseSuperblock(
		superblock({ log: 0, blocks: 10, free: 5, freeInodes: 1, compat: 0, incompat: 0, ro: 0, hiBlocks: 1, hiFree: 1 }),
	);
	assert.is(narrow?.size, 10240);
});

test('no ext magic, or a nonsense block size: not an ext file system', () => {
	assert.is(parseSuperblock(Buffer.alloc(1024)), undefined);
	assert.is(parseSuperblock(superblock({ log: 30, blocks: 1, free: 1, freeInodes: 1, compat: 0, incompat: 0, ro: 0 })), undefined);
});

test.run();
