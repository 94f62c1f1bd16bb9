// Kept partitions, the pure part: selectors resolved on an old GPT (one match
// for PARTLABEL/PARTUUID, any for TYPE, none refused), MBR refused, the image
// checked against them (partitions, mapped data, PARTUUID and name clashes),
// their numbers in the new table, their sfdisk lines, and the write cut around them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSelector } from '../../../src/bundle/keepspec.ts';
import { ReimageError } from '../../../src/errors.ts';
import type { SfdiskTable } from '../../../src/system/disk.ts';
import { clip, HOLDS_BUNDLE, keptLine, keptNumbers, keptOverlap, resolveKept } from '../../../src/target/kept.ts';
import { guardWriter, type Writer } from '../../../src/target/writer.ts';

const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const HOME = '933AC7E1-2EB4-4F13-B844-0E14E2AEF915';
const old: SfdiskTable = {
	label: 'gpt',
	id: 'X',
	device: '/dev/loop9',
	sectorsize: 512,
	partitions: [
		{ node: '/dev/loop9p1', start: 2048, size: 10240, type: LINUX, uuid: 'AAAAAAAA-0000-0000-0000-000000000001', name: 'root' },
		{
			node: '/dev/loop9p2',
			start: 12288,
			size: 4096,
			type: HOME,
			uuid: 'AAAAAAAA-0000-0000-0000-000000000002',
			name: 'home',
			attrs: 'RequiredPartition',
		},
		{ node: '/dev/loop9p3', start: 16384, size: 4096, type: HOME, uuid: 'AAAAAAAA-0000-0000-0000-000000000003', name: 'home' },
		{ node: '/dev/loop9p4', start: 20480, size: 4096, type: LINUX, uuid: 'AAAAAAAA-0000-0000-0000-000000000004', name: 'recovery' },
	],
};
const sel = (...s: string[]) => s.map((x) => parseSelector(x, '--keep'));
const refusal = (fn: () => unknown): ReimageError => {
	try {
		fn();
	} catch (e) {
		if (e instanceof ReimageError) return e;
		throw e;
	}
	throw new Error('not refused');
};

test('selectors: PARTLABEL=, PARTUUID=, TYPE= with a GUID; anything else is a usage error naming it', () => {
	assert.equal(
		sel('PARTLABEL=my home', `TYPE=${HOME}`).map((s) => [s.kind, s.value]),
		[
			['PARTLABEL', 'my home'],
			['TYPE', HOME],
		],
	);
	for (const [bad, why] of [
		['LABEL=x', /is not PARTLABEL=name, PARTUUID=guid or TYPE=guid/],
		['PARTUUID=nope', /needs a GUID such as/],
		['TYPE=', /needs a GUID/],
		['PARTLABEL=', /1 to 36 printable/],
		[`PARTLABEL=${'x'.repeat(37)}`, /1 to 36 printable/],
		['PARTLABEL=a"b', /no quotes/],
	] as const) {
		const e = refusal(() => parseSelector(bad, '--keep'));
		assert.is(e.code, 2, bad);
		assert.match(e.message, why);
	}
});

test('resolve: a PARTLABEL or PARTUUID names one partition, a TYPE every one of it; identity and byte range kept', () => {
	const k = resolveKept(old, sel('PARTLABEL=recovery', 'PARTUUID=aaaaaaaa-0000-0000-0000-000000000002'), '/dev/loop9');
	assert.equal(
		k.map((x) => [x.number, x.name, x.attrs, x.bytes, x.why]),
		[
			[2, 'home', 'RequiredPartition', [12288 * 512, 16384 * 512], ['PARTUUID=aaaaaaaa-0000-0000-0000-000000000002']],
			[4, 'recovery', undefined, [20480 * 512, 24576 * 512], ['PARTLABEL=recovery']],
		],
	);
	assert.equal(
		resolveKept(old, sel(`TYPE=${HOME.toLowerCase()}`, 'PARTLABEL=recovery'), '/dev/loop9').map((x) => x.number),
		[2, 3, 4],
	);
	assert.equal(resolveKept(old, [], '/dev/loop9', 1)[0]?.why, [HOLDS_BUNDLE]);
	assert.equal(resolveKept(undefined, [], '/dev/loop9'), []);
});

test('resolve refuses: nothing matches, two match a PARTLABEL, no table, an MBR', () => {
	assert.match(
		refusal(() => resolveKept(old, sel('PARTLABEL=nosuch'), '/dev/loop9')).message,
		/keep PARTLABEL=nosuch: no partition of \/dev\/loop9 matches it/,
	);
	assert.match(
		refusal(() => resolveKept(old, sel('PARTLABEL=home'), '/dev/loop9')).message,
		/\/dev\/loop9p2 and \/dev\/loop9p3 all match it: name the one to keep by PARTUUID=/,
	);
	assert.match(
		refusal(() => resolveKept(undefined, sel('PARTLABEL=home'), '/dev/loop9')).message,
		/has no partition table, so there is nothing to keep/,
	);
	const e = refusal(() => resolveKept({ ...old, label: 'dos' }, [], '/dev/loop9', 1));
	assert.is(e.code, 4);
	assert.match(e.message, /MBR partition table: keeping partitions \(the partition that holds the bundle\) needs a GPT/);
});

test('overlap: an image partition, mapped data, a shared PARTUUID or name, an MBR image; none when clear', () => {
	const [home] = resolveKept(old, sel('PARTUUID=aaaaaaaa-0000-0000-0000-000000000002'), '/dev/loop9');
	if (!home) throw new Error('fixture');
	const table = (parts: { number: number; start: number; size: number; name?: string; uuid?: string }[]) => ({
		label: 'gpt',
		sectorSize: 512,
		partitions: parts,
	});
	const root = { number: 1, start: 2048, size: 10240, name: 'root' };
	assert.is(keptOverlap([home], table([root]), [[0, 12288 * 512]]), undefined);
	assert.match(
		keptOverlap([home], table([{ ...root, size: 10241 }]), []) ?? '',
		/^partition 1 of the image \("root"\) \(bytes 1048576-6291967\) overlaps kept partition \/dev\/loop9p2 \("home", bytes 6291456-8388607\)$/,
	);
	assert.match(
		keptOverlap([home], table([root]), [
			[0, 4096],
			[8000000, 8001000],
		]) ?? '',
		/^the image's data at bytes 8000000-8000999 would land in kept partition \/dev\/loop9p2/,
	);
	assert.match(keptOverlap([home], table([{ ...root, name: 'home' }]), []) ?? '', /is named "home" like kept partition/);
	assert.match(keptOverlap([home], table([{ ...root, uuid: 'aaaaaaaa-0000-0000-0000-000000000002' }]), []) ?? '', /has the PARTUUID/);
	assert.match(keptOverlap([home], { ...table([root]), label: 'dos' }, []) ?? '', /MBR partition table/);
});

test('numbers: its own when the image leaves it free, else the lowest free one; sfdisk lines carry every identity field', () => {
	const k = resolveKept(old, sel('PARTLABEL=recovery', 'PARTUUID=aaaaaaaa-0000-0000-0000-000000000002'), '/dev/loop9');
	const n = keptNumbers(k, { label: 'gpt', sectorSize: 512, partitions: [1, 2, 3].map((number) => ({ number, start: 0, size: 1 })) });
	assert.equal(
		k.map((x) => n.get(x)),
		[5, 4],
	);
	assert.is(
		keptLine(k[0]!, '/dev/loop9', 5),
		`/dev/loop9p5 : start=12288, size=4096, type=${HOME}, uuid=AAAAAAAA-0000-0000-0000-000000000002, name="home", attrs="RequiredPartition"`,
	);
	assert.is(
		keptLine(k[1]!, '/dev/sda', 4),
		`/dev/sda4 : start=20480, size=4096, type=${LINUX}, uuid=AAAAAAAA-0000-0000-0000-000000000004, name="recovery"`,
	);
});

test('clip and guardWriter: no write reaches a kept range, everything else is written', async () => {
	assert.equal(
		clip(0, 100, [
			[10, 20],
			[50, 60],
		]),
		[
			[0, 10],
			[20, 50],
			[60, 100],
		],
	);
	assert.equal(clip(10, 20, [[0, 100]]), []);
	const writes: [number, number][] = [];
	const w: Writer = {
		direct: false,
		write: async (b, at) => void writes.push([at, at + b.length]),
		sync: async () => {},
		close: async () => {},
	};
	await guardWriter(w, [[4096, 8192]]).write(Buffer.alloc(16384), 0);
	assert.equal(writes, [
		[0, 4096],
		[8192, 16384],
	]);
});

test.run();
