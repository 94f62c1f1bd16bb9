import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from 'node:zlib';
import { guid, isExtended, parseTable, tableDifference } from '../../../src/image/table.ts';
import type { Table } from '../../../src/bundle/manifest.ts';

const LINUX = '0fc63daf-8483-4772-8e79-3d69d8477de4';

// guidBytes: text GUID -> GPT's mixed-endian bytes.
function guidBytes(g: string): Buffer {
	const h = g.replace(/-/g, '');
	const b = Buffer.from(h, 'hex');
	return Buffer.concat([
		Buffer.from(b.subarray(0, 4)).reverse(),
		Buffer.from(b.subarray(4, 6)).reverse(),
		Buffer.from(b.subarray(6, 8)).reverse(),
		b.subarray(8),
	]);
}

// A GPT head (protective MBR, header, 128 entries) for sector size SS.
function gptHead(ss: number, parts: { start: number; size: number; uuid: string; name: string }[], diskId: string): Buffer {
	const head = Buffer.alloc(ss * 2 + 128 * 128);
	head.writeUInt16LE(0xaa55, 510);
	head[446 + 4] = 0xee;
	const arr = Buffer.alloc(128 * 128);
	parts.forEach((p, i) => {
		const e = arr.subarray(i * 128);
		guidBytes(LINUX).copy(e, 0);
		guidBytes(p.uuid).copy(e, 16);
		e.writeBigUInt64LE(BigInt(p.start), 32);
		e.writeBigUInt64LE(BigInt(p.start + p.size - 1), 40);
		e.write(p.name, 56, 'utf16le');
	});
	arr.copy(head, ss * 2);
	const h = head.subarray(ss, ss + 92);
	h.write('EFI PART', 0, 'latin1');
	h.writeUInt32LE(0x10000, 8);
	h.writeUInt32LE(92, 12);
	h.writeBigUInt64LE(1n, 24);
	guidBytes(diskId).copy(h, 56);
	h.writeBigUInt64LE(2n, 72);
	h.writeUInt32LE(128, 80);
	h.writeUInt32LE(128, 84);
	h.writeUInt32LE(crc32(arr), 88);
	h.writeUInt32LE(crc32(h), 16);
	return head;
}

const DISK = '06ceaa96-eefc-a046-927b-ffa2c3a497b4';
const P1 = '3fef47e1-516c-564e-a5b4-e0a2f1b760c6';
const P2 = 'e36ee3d4-2f9b-914c-a12d-b85693baed59';
const parts = [
	{ start: 2048, size: 245760, uuid: P1, name: 'root' },
	{ start: 247808, size: 143360, uuid: P2, name: 'data' },
];
const manifestTable = (): Table => ({
	label: 'gpt',
	id: DISK,
	sectorSize: 512,
	partitions: parts.map((p, i) => ({
		number: i + 1,
		start: p.start,
		size: p.size,
		type: LINUX.toUpperCase(),
		uuid: p.uuid,
		name: p.name,
		fs: {},
	})),
});

test('guid: mixed-endian bytes read back as the text GUID', () => {
	assert.is(guid(guidBytes(LINUX)), LINUX);
});

test('a GPT is parsed from bytes, at 512 and at 4096 bytes per sector', () => {
	for (const ss of [512, 4096]) {
		const r = parseTable(gptHead(ss, parts, DISK), 512);
		assert.ok('table' in r, JSON.stringify(r));
		if (!('table' in r)) return;
		assert.is(r.table.sectorSize, ss);
		assert.is(r.table.id, DISK);
		assert.equal(
			r.table.partitions.map((p) => [p.number, p.start, p.size, p.type, p.uuid, p.name]),
			[
				[1, 2048, 245760, LINUX, P1, 'root'],
				[2, 247808, 143360, LINUX, P2, 'data'],
			],
		);
	}
});

test('the same table as the manifest: no difference; each field that differs is named first', () => {
	const r = parseTable(gptHead(512, parts, DISK));
	if (!('table' in r)) throw new Error('no table');
	assert.is(tableDifference(manifestTable(), r.table), undefined);
	const cases: [(t: Table) => void, RegExp][] = [
		[
			(t) => void (t.partitions[1]!.size -= 2048),
			/^table\.partitions\[number=2\]\.size: the manifest says 141312, the image's own table says 143360$/,
		],
		[(t) => void (t.partitions[0]!.start = 4096), /partitions\[number=1\]\.start/],
		[(t) => void (t.partitions[0]!.name = 'ROOT'), /partitions\[number=1\]\.name/],
		[(t) => void (t.partitions[1]!.uuid = P1), /partitions\[number=2\]\.uuid/],
		[(t) => void (t.partitions[1]!.type = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F'), /partitions\[number=2\]\.type/],
		[(t) => void (t.id = P1), /^table\.id/],
		[(t) => void (t.sectorSize = 4096), /^table\.sectorSize/],
		[(t) => void (t.label = 'dos'), /^table\.label/],
		[(t) => void t.partitions.pop(), /image's own table has partition 2, which the manifest does not name/],
		[
			(t) => void t.partitions.push({ ...t.partitions[1]!, number: 3 }),
			/manifest names partition 3, the image's own table has no such partition/,
		],
	];
	for (const [edit, want] of cases) {
		const t = manifestTable();
		edit(t);
		assert.match(tableDifference(t, r.table) ?? '', want);
	}
});

test('a GPT whose header or entry array fails its CRC32 is refused; a short head asks for more', () => {
	const bad = gptHead(512, parts, DISK);
	bad.writeUInt8(bad.readUInt8(512 + 60) ^ 1, 512 + 60);
	assert.equal(parseTable(bad), { error: 'its primary GPT header fails its CRC32' });
	const badEntries = gptHead(512, parts, DISK);
	badEntries.writeUInt8(badEntries.readUInt8(1024 + 60) ^ 1, 1024 + 60);
	assert.equal(parseTable(badEntries), { error: 'its GPT entry array fails its CRC32' });
	assert.equal(parseTable(gptHead(512, parts, DISK).subarray(0, 4096)), { need: 1024 + 128 * 128 });
});

test('an MBR is parsed: disk id, primary partitions, hex types; no signature is an error', () => {
	const mbr = Buffer.alloc(512);
	mbr.writeUInt32LE(0x1234abcd, 440);
	mbr.writeUInt16LE(0xaa55, 510);
	mbr[446 + 4] = 0x83;
	mbr.writeUInt32LE(2048, 446 + 8);
	mbr.writeUInt32LE(40960, 446 + 12);
	mbr[462 + 4] = 0x0c;
	mbr.writeUInt32LE(43008, 462 + 8);
	mbr.writeUInt32LE(4096, 462 + 12);
	const r = parseTable(mbr);
	assert.ok('table' in r);
	if (!('table' in r)) return;
	assert.is(r.table.id, '0x1234abcd');
	assert.equal(r.table.partitions, [
		{ number: 1, start: 2048, size: 40960, type: '83' },
		{ number: 2, start: 43008, size: 4096, type: 'c' },
	]);
	assert.equal(parseTable(Buffer.alloc(1024)), { error: 'it has no partition table (no GPT header, no MBR signature)' });
});

/** An MBR or EBR sector: entries [type, start, size] in slots 0.. (empty slots skipped). */
function mbrSector(entries: [number, number, number][]): Buffer {
	const b = Buffer.alloc(512);
	b.writeUInt16LE(0xaa55, 510);
	entries.forEach(([type, start, size], i) => {
		b[446 + i * 16 + 4] = type;
		b.writeUInt32LE(start, 446 + i * 16 + 8);
		b.writeUInt32LE(size, 446 + i * 16 + 12);
	});
	return b;
}

test('an MBR extended partition: its EBR chain is followed (asked for by offset when past the head), logicals numbered from 5', () => {
	// Extended partition 2 at sector 4096; logicals at EBR+2048 (relative to each EBR); the 2nd EBR 20480 sectors into the extended one.
	const mbr = mbrSector([
		[0x83, 2048, 2048],
		[0x05, 4096, 40960],
	]);
	const ebr1 = mbrSector([
		[0x83, 2048, 16384],
		[0x05, 20480, 20480],
	]);
	const ebr2 = mbrSector([[0x83, 2048, 18432]]);
	const head = Buffer.alloc(4096 * 512 + 512);
	mbr.copy(head, 0);
	ebr1.copy(head, 4096 * 512);
	assert.equal(parseTable(head), { needAt: (4096 + 20480) * 512 });
	const r = parseTable(head, 512, new Map([[(4096 + 20480) * 512, ebr2]]));
	assert.ok('table' in r);
	if (!('table' in r)) return;
	assert.equal(r.table.partitions, [
		{ number: 1, start: 2048, size: 2048, type: '83' },
		{ number: 2, start: 4096, size: 40960, type: '5' },
		{ number: 5, start: 6144, size: 16384, type: '83' },
		{ number: 6, start: 4096 + 20480 + 2048, size: 18432, type: '83' },
	]);
	// A chain that points back at itself, a second extended partition, an EBR without its signature: named errors.
	const back = mbrSector([
		[0x83, 2048, 100],
		[0x05, 20480, 1],
	]);
	assert.equal(parseTable(head, 512, new Map([[(4096 + 20480) * 512, back]])), {
		error: 'its chain of logical partitions (extended partition 2) loops or has more than 124 links',
	});
	assert.match(
		JSON.stringify(
			parseTable(
				mbrSector([
					[0x05, 1, 1],
					[0x0f, 10, 10],
				]),
			),
		),
		/has 2 extended partitions \(1, 2\)/,
	);
	const nosig = Buffer.alloc(4096 * 512 + 512);
	mbr.copy(nosig, 0);
	assert.match(JSON.stringify(parseTable(nosig)), /extended boot record at byte 2097152 \(extended partition 2\) has no signature/);
});

test('isExtended: sfdisk and MBR spellings of the extended types', () => {
	for (const t of ['5', '0x5', '0x05', 'f', 'F', '85']) assert.ok(isExtended(t), t);
	for (const t of ['83', '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'ee']) assert.not.ok(isExtended(t), t);
});

test.run();
