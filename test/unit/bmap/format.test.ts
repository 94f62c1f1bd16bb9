import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { extents, formatBmap, parseBmap, type BlockMap } from '../../../src/bmap/format.ts';

const sum = (s: string) => createHash('sha256').update(s).digest('hex');
const map: BlockMap = {
	imageSize: 10 * 4096 + 512,
	blockSize: 4096,
	checksum: 'sha256',
	ranges: [
		{ first: 0, last: 1, sum: sum('a') },
		{ first: 5, last: 5, sum: sum('b') },
		{ first: 10, last: 10, sum: sum('c') },
	],
};

test('what formatBmap writes, parseBmap reads back, its own checksum included', () => {
	const bytes = formatBmap(map);
	assert.equal(parseBmap(bytes, 'x.bmap'), map);
	assert.match(bytes.toString(), /<bmap version="2.0">/);
	assert.match(bytes.toString(), /<MappedBlocksCount> 4 <\/MappedBlocksCount>/);
});

test('the last extent ends at the image end, not at a block boundary', () => {
	assert.equal(
		extents(map).map((e) => [e.start, e.end]),
		[
			[0, 8192],
			[20480, 24576],
			[40960, 41472],
		],
	);
});

// What bmaptool 3.6 `create` writes (a 3-block image, blocks 0 and 2 mapped), checksum computed the bmaptool way.
function bmaptoolStyle(edit = (s: string) => s): Buffer {
	const zero = '0'.repeat(64);
	let text = `<?xml version="1.0" ?>\n<!-- This file contains the block map for an image file -->\n<bmap version="2.0">\n    <!-- Image size in bytes: 12.0 KiB -->\n    <ImageSize> 12288 </ImageSize>\n\n    <BlockSize> 4096 </BlockSize>\n    <BlocksCount> 3 </BlocksCount>\n    <MappedBlocksCount> 2     </MappedBlocksCount>\n    <ChecksumType> sha256 </ChecksumType>\n    <BmapFileChecksum> ${zero} </BmapFileChecksum>\n    <BlockMap>\n        <Range chksum="${sum('x')}"> 0 </Range>\n        <Range chksum="${sum('y')}"> 2 </Range>\n    </BlockMap>\n</bmap>\n`;
	text = edit(text);
	return Buffer.from(text.replace(zero, sum(text)));
}

test('a bmaptool-made file is read, single-block ranges and padding included', () => {
	const b = parseBmap(bmaptoolStyle(), 'tool.bmap');
	assert.equal(b.ranges, [
		{ first: 0, last: 0, sum: sum('x') },
		{ first: 2, last: 2, sum: sum('y') },
	]);
});

test('corrupt, inconsistent or checksum-less maps are refused with the reason', () => {
	const bytes = bmaptoolStyle();
	const flipped = Buffer.from(bytes.toString().replace('<BlockSize> 4096', '<BlockSize> 4097'));
	assert.throws(() => parseBmap(flipped, 'f.bmap'), /block map f.bmap/);
	const tampered = Buffer.from(bytes.toString().replace('> 2 </Range>', '> 1 </Range>'));
	assert.throws(() => parseBmap(tampered, 't.bmap'), /is corrupt: its own checksum/);
	assert.throws(
		() =>
			parseBmap(
				bmaptoolStyle((s) => s.replace('<BlocksCount> 3', '<BlocksCount> 4')),
				'c.bmap',
			),
		/says 4 blocks, but 12288 bytes make 3/,
	);
	assert.throws(
		() =>
			parseBmap(
				bmaptoolStyle((s) => s.replace(/ chksum="[0-9a-f]+"> 2/, '> 2')),
				'n.bmap',
			),
		/without a sha256 checksum/,
	);
	assert.throws(
		() =>
			parseBmap(
				bmaptoolStyle((s) => s.replace('> 2 </Range>', '> 0 </Range>').replace('2     </Mapped', '2 </Mapped')),
				'o.bmap',
			),
		/out of order, overlapping/,
	);
	assert.throws(
		() =>
			parseBmap(
				bmaptoolStyle((s) => s.replace('> 2 </Range>', '> 3 </Range>')),
				'b.bmap',
			),
		/beyond block 2/,
	);
	assert.throws(
		() =>
			parseBmap(
				bmaptoolStyle((s) => s.replace('version="2.0"', 'version="3.0"')),
				'v.bmap',
			),
		/format version 3.0/,
	);
	assert.throws(() => parseBmap(Buffer.from('hello'), 'h.bmap'), /not a bmaptool block map/);
});

test.run();
