import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { codecs, detect } from '../../../src/codecs/index.ts';

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');

test('magic bytes of every codec', () => {
	assert.is(detect(hex('28 b5 2f fd 04 58')), 'zstd');
	assert.is(detect(hex('1f 8b 08 00')), 'gzip');
	assert.is(detect(hex('fd 37 7a 58 5a 00 00')), 'xz');
	assert.is(detect(Buffer.from('BZh91AY&SY')), 'bzip2');
	assert.is(detect(Buffer.alloc(512)), 'none');
	assert.is(detect(Buffer.from('BZh0')), 'none', 'bzip2 needs a block size digit 1-9');
});

test('every codec has a distinct bundle extension', () => {
	const exts = Object.values(codecs).map((c) => c.ext);
	assert.is(new Set(exts).size, exts.length);
});

test.run();
