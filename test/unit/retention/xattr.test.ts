// parseGetfattrFiles: one getfattr for many files, attributes by file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseGetfattrFiles, readXattrsMany } from '../../../src/retention/xattr.ts';

const OUT = '# file: /proc/1/fd/3\nuser.a=0sMQ==\nsecurity.capability=0sAQAAAg==\n\n# file: /proc/1/fd/5\nuser.b=0x6869\n\n';

test('attributes are grouped by the file they belong to; a file without any is absent', () => {
	const m = parseGetfattrFiles(OUT);
	assert.equal([...m.keys()], ['/proc/1/fd/3', '/proc/1/fd/5']);
	assert.equal(m.get('/proc/1/fd/3'), [
		{ name: 'user.a', value: 'MQ==' },
		{ name: 'security.capability', value: 'AQAAAg==' },
	]);
	assert.equal(m.get('/proc/1/fd/5'), [{ name: 'user.b', value: Buffer.from('hi').toString('base64') }]);
	assert.is(parseGetfattrFiles('').size, 0);
});

test('readXattrsMany: one call for all paths; any error -> undefined (the caller asks one by one)', async () => {
	const calls: string[][] = [];
	const ok = await readXattrsMany(['/proc/1/fd/3', '/proc/1/fd/4', '/proc/1/fd/5'], async (_t, args) => {
		calls.push([...args]);
		return { stdout: OUT, stderr: '', exitCode: 0 };
	});
	assert.is(calls.length, 1);
	assert.equal(calls[0]?.slice(-3), ['/proc/1/fd/3', '/proc/1/fd/4', '/proc/1/fd/5']);
	assert.is(ok?.get('/proc/1/fd/4'), undefined);
	const bad = await readXattrsMany(['/proc/1/fd/3'], async () => ({
		stdout: '',
		stderr: 'getfattr: /proc/1/fd/3: Input/output error',
		exitCode: 1,
	}));
	assert.is(bad, undefined);
});

test.run();
