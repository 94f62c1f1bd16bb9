import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig, readPv, vgFromText } from '../../../src/image/lvm.ts';
import { TOOLS } from '../../helpers/fake-sys.ts';

// Real metadata: `pvck --dump metadata` of a PV made by lvm2 2.03.16 (vgcreate -s 4m vgt; lvcreate -L 20M root; -L 8M data).
const TEXT = fs.readFileSync(path.join(TOOLS, 'lvm-metadata-vgt.txt'), 'utf8');

test('vgFromText: the real metadata gives the VG, its UUID and each linear LV as a byte range of the PV', () => {
	const vg = vgFromText(TEXT);
	assert.is(vg.vg, 'vgt');
	assert.is(vg.vgUuid, 'H4LyKP-b44r-NAp1-ZsLX-2Trt-vgdf-Cef9WR');
	assert.is(vg.pvCount, 1);
	// pe_start 2048 sectors = 1 MiB; extents of 4 MiB; data starts at extent 5.
	assert.equal(vg.lvs, [
		{ name: 'root', uuid: 'opYWtE-98gc-srIL-aHFp-PI3a-Mf20-ys9CsP', offset: 1 << 20, size: 20 << 20 },
		{ name: 'data', uuid: 'hHzzXj-jUCk-Y2qn-W72G-9jfb-boMV-zLIDgw', offset: (1 << 20) + 5 * (4 << 20), size: 8 << 20 },
	]);
	assert.equal(vg.skipped, []);
});

test('vgFromText: a striped, split or other-PV logical volume is skipped, not given a wrong range', () => {
	const striped = TEXT.replace('stripe_count = 1', 'stripe_count = 2');
	assert.equal(vgFromText(striped).skipped, ['root']);
	const elsewhere = TEXT.replace('"pv0", 5', '"pv1", 5');
	assert.equal(vgFromText(elsewhere).skipped, ['data']);
	// Two segments that are not next to each other on the PV.
	const split = TEXT.replace(
		/segment_count = 1\n\nsegment1 \{\nstart_extent = 0\nextent_count = 2/,
		'segment_count = 2\n\nsegment2 {\nstart_extent = 1\nextent_count = 1\ntype = "striped"\nstripe_count = 1\nstripes = ["pv0", 9]\n}\nsegment1 {\nstart_extent = 0\nextent_count = 1',
	);
	assert.equal(vgFromText(split).skipped, ['data']);
});

test('parseConfig: comments, lists, nested blocks, escaped quotes; junk is refused in one sentence', () => {
	assert.equal(parseConfig('a = 1 # c\nb = ["x", 2]\nc { d = "q\\"r" }'), { a: 1, b: ['x', 2], c: { d: 'q"r' } });
	assert.throws(() => parseConfig('a b'), /unexpected "end" after "b" in LVM metadata|unexpected/);
	assert.throws(() => vgFromText('x = 1'), /names no volume group/);
});

test('readPv: the label, PV header and metadata area header lead to the newest text (as lvm2 writes them)', async () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-lvm-'));
	try {
		const file = path.join(dir, 'pv');
		const pv = Buffer.alloc(1 << 20);
		pv.write('LABELONE', 512, 'latin1');
		pv.writeUInt32LE(32, 512 + 20);
		pv.write('LVM2 001', 512 + 24, 'latin1');
		pv.write('E7dTbMcGoUrAWSIR0Hjg1XGmTNt6UWt7', 512 + 32, 'latin1');
		// data area (1 MiB, 0 = to the end), end of list, metadata area at 4096, end of list
		pv.writeBigUInt64LE(1n << 20n, 512 + 72);
		pv.writeBigUInt64LE(4096n, 512 + 104);
		pv.writeBigUInt64LE(1044480n, 512 + 112);
		pv.write(' LVM2 x[5A%r0N*>', 4096 + 4, 'latin1');
		pv.writeBigUInt64LE(4096n, 4096 + 24);
		pv.writeBigUInt64LE(1044480n, 4096 + 32);
		pv.writeBigUInt64LE(3072n, 4096 + 40);
		pv.writeBigUInt64LE(BigInt(Buffer.byteLength(TEXT)), 4096 + 48);
		pv.write(TEXT, 4096 + 3072, 'utf8');
		fs.writeFileSync(file, Buffer.concat([Buffer.alloc(4096), pv]));
		const got = await readPv(file, 4096, pv.length);
		assert.is(got?.vg, 'vgt');
		assert.is(got?.lvs.length, 2);
		// No label: not a PV.
		assert.is(await readPv(file, 0, 4096), undefined);
		// A metadata area header that is not one: named.
		pv.write('garbage', 4096 + 4, 'latin1');
		fs.writeFileSync(file, pv);
		await readPv(file, 0, pv.length).then(
			() => assert.unreachable(),
			(e: Error) => assert.match(e.message, /no LVM metadata area header at byte 4096/),
		);
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
});

test.run();
