// sameParts: the settle's comparison of the kernel's partitions with the table (pure).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sameParts } from '../../../src/target/partitions.ts';

test('sameParts: number, start and size must all match', () => {
	const e = [
		{ number: 1, start: 256, size: 10240 },
		{ number: 2, start: 10496, size: 13824 },
	];
	assert.ok(sameParts(e, e));
	assert.not.ok(sameParts([e[0]!], e));
	assert.not.ok(sameParts([e[0]!, { ...e[1]!, size: 13823 }], e));
	// sysfs units (512 bytes) against a 4Kn table: no match unless converted (sysfs.ts inSectors).
	assert.not.ok(
		sameParts(
			[
				{ number: 1, start: 2048, size: 81920 },
				{ number: 2, start: 83968, size: 110592 },
			],
			e,
		),
	);
});

test('sameParts: an extended MBR partition matches on its start only (the kernel keeps a 1 KiB stub)', () => {
	const e = [
		{ number: 1, start: 2048, size: 81920 },
		{ number: 2, start: 83968, size: 79872, extended: true },
		{ number: 5, start: 86016, size: 32768 },
	];
	assert.ok(sameParts([e[0]!, { number: 2, start: 83968, size: 2 }, e[2]!], e));
	assert.not.ok(sameParts([e[0]!, { number: 2, start: 83970, size: 2 }, e[2]!], e));
	// A logical partition's size is compared as usual.
	assert.not.ok(sameParts([e[0]!, { number: 2, start: 83968, size: 2 }, { ...e[2]!, size: 2 }], e));
});

test.run();
