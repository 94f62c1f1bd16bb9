import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { display, fromBuffer, human, isUtf8, parseSize, toBuffer } from '../../../src/util/bytes.ts';

test('binary strings round-trip every byte', () => {
	const b = Buffer.from([0x2f, 0xff, 0x0a, 0xc3, 0xa9, 0x00]);
	assert.ok(toBuffer(fromBuffer(b)).equals(b));
});

test('display escapes control bytes and invalid UTF-8 but keeps valid UTF-8', () => {
	assert.is(display(fromBuffer(Buffer.from('/srv/café'))), '/srv/café');
	assert.is(display(fromBuffer(Buffer.from('a\nb'))), 'a\\x0ab');
	assert.is(display(fromBuffer(Buffer.from([0x61, 0xff, 0x62]))), 'a\\xffb');
	assert.not.ok(isUtf8(fromBuffer(Buffer.from([0xff]))));
	assert.ok(isUtf8(fromBuffer(Buffer.from('é'))));
});

test('human sizes', () => {
	assert.is(human(512), '512 B');
	assert.is(human(1536), '1.5 KiB');
	assert.is(human(320 * 2 ** 20), '320 MiB');
});

test('sizes with binary units', () => {
	assert.is(parseSize('512'), 512);
	assert.is(parseSize('64M'), 64 * 2 ** 20);
	assert.is(parseSize('1.5G'), 1.5 * 2 ** 30);
	assert.is(parseSize('2TiB'), 2 * 2 ** 40);
	assert.is(parseSize('lots'), undefined);
});

test.run();
