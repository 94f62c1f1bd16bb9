// planWrite: the unmapped policy × what the disk can do (write-zeroes and
// discard offloads, from the captured sysfs of a loop disk) × whether the
// bundle has a block map.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BlockMap, Unmapped } from '../../../src/bmap/format.ts';
import { planWrite, type WritePlan } from '../../../src/target/plan.ts';
import { inspect } from '../../../src/target/sysfs.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';

// 100 blocks of 4 KiB, 25 mapped.
const MAP: BlockMap = { imageSize: 100 * 4096, blockSize: 4096, checksum: 'sha256', ranges: [{ first: 0, last: 24, sum: 'x' }] };
type Caps = { zeroes: boolean; discard: boolean };
type Want = Pick<WritePlan, 'mappedOnly' | 'blank' | 'wholeImage'>;

async function plan(policy: Unmapped, caps: Caps, map: BlockMap | null = MAP): Promise<WritePlan> {
	const f = fakeSys().sysfs('sysfs-gpt');
	const q = 'sys/devices/virtual/block/loop9/queue';
	if (!caps.zeroes) f.file(`${q}/write_zeroes_max_bytes`, '0');
	if (!caps.discard) f.file(`${q}/discard_max_bytes`, '0');
	const d = await inspect('/dev/loop9', f);
	try {
		return await planWrite(d!, map ?? undefined, policy, f);
	} finally {
		assert.equal(f.calls, [], 'planning starts no process');
		f.done();
	}
}

const pick = (p: WritePlan): Want => ({ mappedOnly: p.mappedOnly, wholeImage: p.wholeImage, ...(p.blank ? { blank: p.blank } : {}) });
const ALL = { zeroes: true, discard: true };
const NONE = { zeroes: false, discard: false };

const table: [Unmapped, Caps, Want, RegExp][] = [
	[
		'zero',
		ALL,
		{ mappedOnly: true, blank: 'zero', wholeImage: true },
		/25\.0 % of the image is mapped; unmapped=zero: the disk zeroes the rest itself/,
	],
	['zero', { zeroes: false, discard: true }, { mappedOnly: false, wholeImage: true }, /no write-zeroes offload, so the zeros are written/],
	['write', ALL, { mappedOnly: false, wholeImage: true }, /unmapped=write: writing every byte/],
	['write', NONE, { mappedOnly: false, wholeImage: true }, /unmapped=write/],
	['discard', ALL, { mappedOnly: true, blank: 'discard', wholeImage: false }, /the rest is discarded \(it may read back as old data\)/],
	[
		'discard',
		{ zeroes: true, discard: false },
		{ mappedOnly: true, wholeImage: false },
		/the disk cannot discard, so the rest is left as it was/,
	],
	['leave', ALL, { mappedOnly: true, wholeImage: false }, /unmapped=leave: the rest keeps what the old system had/],
	['leave', NONE, { mappedOnly: true, wholeImage: false }, /unmapped=leave/],
];

for (const [policy, caps, want, why] of table) {
	test(`unmapped=${policy} on a disk with write-zeroes ${caps.zeroes ? 'yes' : 'no'}, discard ${caps.discard ? 'yes' : 'no'}`, async () => {
		const p = await plan(policy, caps);
		assert.equal(pick(p), want);
		assert.is(p.unmapped, policy);
		assert.match(p.why, why);
	});
}

test('without a block map every policy writes every byte and the whole image is read back', async () => {
	for (const policy of ['zero', 'write', 'discard', 'leave'] as const) {
		for (const caps of [ALL, NONE]) {
			const p = await plan(policy, caps, null);
			assert.equal(pick(p), { mappedOnly: false, wholeImage: true });
			assert.is(p.unmapped, 'no block map');
		}
	}
});

test.run();
