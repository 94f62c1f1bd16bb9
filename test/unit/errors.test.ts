import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT, ReimageError, ToolError, describe, bundleError, targetError, retentionError, usageError } from '../../src/errors.ts';

test('each error kind carries its documented exit code', () => {
	assert.is(usageError('x').code, 2);
	assert.is(bundleError('x').code, 3);
	assert.is(targetError('x').code, 4);
	assert.is(retentionError('x').code, 5);
	assert.is(new ReimageError('memory', 'x').code, 6);
	assert.is(new ReimageError('writeFailed', 'x').code, 10);
	assert.equal(new Set(Object.values(EXIT)).size, Object.keys(EXIT).length, 'codes are distinct');
});

test('tool failures are one line naming the tool, the arguments, the exit code and stderr', () => {
	const e = new ToolError('blockdev', ['--rereadpt', '/dev/vda'], 1, 'Device or resource busy');
	assert.is(e.message, 'blockdev --rereadpt /dev/vda: exit 1: Device or resource busy');
	assert.is(e.code, 8);
});

test('unknown errors become an internal error line without a stack', () => {
	const d = describe(new TypeError('x is undefined'));
	assert.is(d.code, 1);
	assert.ok(d.internal);
	assert.not.match(d.line, /\n/);
	assert.equal(describe(bundleError('bundle image x is bad')), { line: 'bundle image x is bad', code: 3, internal: false });
});

test.run();
