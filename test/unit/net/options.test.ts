// Credentials from a file, and the bundle URL's normal form.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { netLimitFlags, parseAuth } from '../../../src/net/options.ts';
import { Config } from '../../../src/boot/config.ts';
import { baseUrl } from '../../../src/sources/http.ts';

test('an auth file holds one line: basic USER:PASSWORD or bearer TOKEN', () => {
	assert.is(parseAuth('basic kiosk:s3cr:et\n', 'f'), `Basic ${Buffer.from('kiosk:s3cr:et').toString('base64')}`);
	assert.is(parseAuth('Bearer abc.def-ghi\n', 'f'), 'Bearer abc.def-ghi');
	for (const bad of ['', 'abc', 'basic nocolon', 'token x', 'bearer a\nbearer b', 'bearer a b'])
		assert.throws(() => parseAuth(bad, '/etc/x'), /auth file \/etc\/x/, JSON.stringify(bad));
});

test('a bundle URL names the directory: a trailing manifest.json or a missing slash are the same bundle', () => {
	assert.is(baseUrl('https://h/b').toString(), 'https://h/b/');
	assert.is(baseUrl('https://h/b/manifest.json').toString(), 'https://h/b/');
	assert.is(baseUrl('http://h:8080/a/b/#x').toString(), 'http://h:8080/a/b/');
	assert.throws(() => baseUrl('https://user:pw@h/b/'), /--auth-file/);
	assert.throws(() => baseUrl('https://'), /not a valid URL/);
});

test('download limits: --stall-timeout, --deadline, --retries validated once (zod), the same for the policy', () => {
	assert.equal(netLimitFlags({ stallTimeout: '5', deadline: '600', retries: '0' }), { stallSeconds: 5, deadlineSeconds: 600, retries: 0 });
	assert.equal(netLimitFlags({}), {});
	assert.throws(() => netLimitFlags({ stallTimeout: '0' }), /--stall-timeout 0 is not valid \(stallTimeout: .*\): give a whole number/);
	assert.throws(() => netLimitFlags({ retries: 'many' }), /--retries many is not valid/);
	assert.throws(() => netLimitFlags({ deadline: '-1' }), /--deadline -1 is not valid/);
	assert.throws(() => netLimitFlags({ retries: '1.5' }), /--retries 1\.5 is not valid/);
	assert.is(Config.parse({ stallTimeout: 30, deadline: 3600, retries: 10 }).retries, 10);
	for (const bad of [{ retries: -1 }, { stallTimeout: 0 }, { deadline: '60' }, { retries: 2.5 }])
		assert.not.ok(Config.safeParse(bad).success, JSON.stringify(bad));
});

test.run();
