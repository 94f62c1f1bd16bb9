// The chunker: casync's cut rules (sizes, fixed mode), the same cuts however
// the input is sliced, and the fast cut test equal to h mod d = d−1.
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { discriminator } from '../../../src/chunks/buzhash.ts';
import { chunker, cutLength, cuts, sizesProblem } from '../../../src/chunks/chunker.ts';

const cutAll = (buf: Uint8Array, c: ReturnType<typeof chunker>) => {
	const out: number[] = [];
	for (let s = 0; s < buf.length; ) {
		let l = cutLength(buf, s, buf.length, c);
		if (l < 0) l = buf.length - s;
		out.push(l);
		s += l;
	}
	return out;
};

test('the cut test by modular inverse equals h mod d = d−1, for odd, even and power-of-two d', () => {
	for (const d of [3075, 49535, 4096, 3236, 1024, 7, 2]) {
		// min = avg = max = d: the discriminator clamps to d.
		const c = chunker({ min: d, avg: d, max: d });
		assert.is(c.d, d);
		const hs = [
			0,
			1,
			-1,
			-2,
			d - 1,
			d - 2,
			2 * d - 1,
			0x7fffffff,
			-0x80000000,
			...Array.from({ length: 20000 }, () => randomBytes(4).readInt32LE()),
		];
		for (const h of hs) assert.is(cuts(h, c), (h >>> 0) % d === d - 1, `d ${d} h ${h >>> 0}`);
	}
});

test('chunks are min..max bytes (the last may be shorter) and cut the same however the input is sliced', () => {
	const buf = randomBytes(1 << 20);
	const c = chunker({ min: 1024, avg: 4096, max: 16384 });
	const all = cutAll(buf, c);
	assert.is(
		all.reduce((a, b) => a + b, 0),
		buf.length,
	);
	for (const l of all.slice(0, -1)) assert.ok(l >= 1024 && l <= 16384, String(l));
	// A cut depends only on its chunk's bytes: starting at any cut gives the same tail.
	const at = all.slice(0, 10).reduce((a, b) => a + b, 0);
	assert.equal(cutAll(buf.subarray(at), c), all.slice(10));
	// An end before the cut asks for more data.
	assert.is(cutLength(buf, 0, 1000, c), -1);
});

test('zeros cut at max (their window hash never cuts for 4 KiB), min = avg = max is fixed-size', () => {
	const zeros = new Uint8Array(100000);
	assert.equal(cutAll(zeros, chunker({ min: 1024, avg: 4096, max: 16384 })).slice(0, 3), [16384, 16384, 16384]);
	assert.equal(cutAll(randomBytes(10000), chunker({ min: 4096, avg: 4096, max: 4096 })), [4096, 4096, 1808]);
});

test('sizes casync refuses are named; the discriminator is clamped to [min, max]', () => {
	assert.ok(sizesProblem({ min: 4096, avg: 1024, max: 16384 }));
	assert.ok(sizesProblem({ min: 0, avg: 1024, max: 16384 }));
	assert.ok(sizesProblem({ min: 1024, avg: 4096, max: 256 << 20 }));
	assert.is(sizesProblem({ min: 1024, avg: 4096, max: 16384 }), undefined);
	assert.is(discriminator(16384, 65536, 262144), 49535);
	assert.is(discriminator(4000, 4096, 4100), 4000);
});

test.run();
