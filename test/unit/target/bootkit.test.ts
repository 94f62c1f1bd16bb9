// The boot kit's pure parts: filefrag's extents, absolute sectors, GRUB's boot
// sector and core blocklist patched, and the embedded script.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { absolute, blocklist, bootCode, kitScript, parseFilefrag, pointCore } from '../../../src/target/bootkit.ts';

const FILEFRAG = `Filesystem type is: ef53
File size of /m/reimage-kit/initrd.img is 300000 (592 blocks of 512 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..     511:      34816..     35327:    512:
   1:      512..     591:      40960..     41039:     80:      35328: last,eof
/m/reimage-kit/initrd.img: 2 extents found
`;

test('parseFilefrag: each extent in 512-byte sectors, with or without the expected column', () => {
	assert.equal(parseFilefrag(FILEFRAG, 'initrd.img'), [
		{ logical: 0, physical: 34816, length: 512 },
		{ logical: 512, physical: 40960, length: 80 },
	]);
});

test('parseFilefrag: an extent not yet at a fixed place (delayed, unwritten, inline) or no extent at all is refused, naming the file', () => {
	const unwritten = FILEFRAG.replace('last,eof', 'last,unwritten,eof');
	assert.throws(
		() => parseFilefrag(unwritten, 'initrd.img'),
		/initrd\.img has an extent that is not at a fixed place on the disk \(filefrag flags: last,unwritten,eof\)/,
	);
	assert.throws(() => parseFilefrag('Filesystem type is: ef53\n', 'core.img'), /filefrag found no extents for core\.img/);
});

test('absolute: the partition start added, adjacent pieces merged, the last cut to the file size; a hole or a short map refused', () => {
	const ext = parseFilefrag(FILEFRAG, 'initrd.img');
	assert.equal(absolute(ext, 2048, 300000), [
		[36864, 512],
		[43008, 74],
	]);
	assert.equal(absolute(ext, 2048, 1000), [[36864, 2]]);
	assert.equal(
		absolute(
			[
				{ logical: 0, physical: 100, length: 8 },
				{ logical: 8, physical: 108, length: 8 },
			],
			0,
			16 * 512,
		),
		[[100, 16]],
	);
	assert.throws(() => absolute([{ logical: 8, physical: 100, length: 8 }], 0, 512), /hole at sector 0/);
	assert.throws(() => absolute([{ logical: 0, physical: 100, length: 8 }], 0, 20 * 512), /cover 8 of the file's 20 sectors/);
	assert.is(
		blocklist('($root)', [
			[36864, 512],
			[43008, 80],
		]),
		'($root)36864+512,43008+80',
	);
});

test("bootCode: boot.img's first 440 bytes, the core's sector at 0x5c (64-bit LE) and the drive check made a no-op; not a boot sector is refused", () => {
	const img = Buffer.alloc(512, 0xab);
	img.writeUInt16LE(0xaa55, 510);
	const c = bootCode(img, 0x1_0000_0203);
	assert.is(c.length, 440);
	assert.is(c.readBigUInt64LE(0x5c), 0x1_0000_0203n);
	assert.is(c.readUInt16LE(0x66), 0x9090);
	assert.is(c[0x5b], 0xab);
	assert.is(c[0x68], 0xab);
	assert.throws(() => bootCode(Buffer.alloc(512), 1), /not a 512-byte boot sector/);
});

test("pointCore: the core's first blocklist starts at its second sector; a core whose list does not count its sectors is refused", () => {
	const core = Buffer.alloc(512 * 3 + 100);
	core.writeBigUInt64LE(2n, 0x1f4);
	core.writeUInt16LE(3, 0x1fc);
	const p = pointCore(core, 5000);
	assert.is(p.readBigUInt64LE(0x1f4), 5001n);
	assert.is(p.readUInt16LE(0x1fc), 3);
	assert.is(core.readBigUInt64LE(0x1f4), 2n, 'the input is not changed');
	core.writeUInt16LE(7, 0x1fc);
	assert.throws(() => pointCore(core, 5000), /not a GRUB i386-pc core image/);
});

test('kitScript: linux and initrd by block list on the boot disk with the arguments; an argument GRUB would misread is refused', () => {
	const s = kitScript(
		[[100, 8]],
		[
			[200, 16],
			[300, 2],
		],
		'rd.reimage rd.reimage.bundle=LABEL=R:/bundle',
	);
	assert.match(s, /^linux \(\$root\)100\+8 rd\.reimage rd\.reimage\.bundle=LABEL=R:\/bundle$/m);
	assert.match(s, /^initrd \(\$root\)200\+16 \(\$root\)300\+2$/m, 'one file per piece (GRUB concatenates them)');
	assert.match(s, /^boot$/m);
	assert.throws(() => kitScript([[1, 1]], [[2, 1]], 'a=$x'), /cannot carry/);
	assert.throws(
		() =>
			kitScript(
				[
					[1, 1],
					[5, 1],
				],
				[[2, 1]],
				'a',
			),
		/the kernel lies in 2 pieces/,
	);
});

test.run();
