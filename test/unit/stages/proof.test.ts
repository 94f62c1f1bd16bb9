import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { proofFor } from '../../../src/stages/proof.ts';
import type { BlockMap } from '../../../src/bmap/format.ts';

const map = {} as BlockMap;

test('a bundle without a block map is decoded and checked before writing unless the policy skips it', () => {
	assert.ok(proofFor({}, undefined).decodeFirst);
	assert.match(proofFor({}, undefined).text, /no block map/);
	assert.not.ok(proofFor({}, false).decodeFirst);
	assert.match(proofFor({}, false).text, /skipped/);
});

test('a block map proves each range as it is written; --verify-raw decodes first anyway', () => {
	assert.not.ok(proofFor({ bmap: map }, undefined).decodeFirst);
	assert.not.ok(proofFor({ bmap: map }, false).decodeFirst);
	assert.ok(proofFor({ bmap: map }, true).decodeFirst);
});

test.run();
