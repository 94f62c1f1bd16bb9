import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { junitXml } from '../../../src/vmtest/junit.ts';

test('a pass is one test case without a failure; a fail carries the reason, escaped, and the serial lines', () => {
	const ok = junitXml('/srv/bundle', { pass: true, reason: 'the report says success', serialTail: ['reimage: done'] }, 61.25);
	assert.match(ok, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites tests="1" failures="0" time="61\.3">/);
	assert.match(
		ok,
		/<testcase classname="reimage\.vm-test" name="\/srv\/bundle" time="61\.3">\n {6}<system-out>reimage: done<\/system-out>/,
	);
	assert.not.match(ok, /<failure/);
	const bad = junitXml('b<&>"', { pass: false, reason: 'retained entry "/etc/x" <missing> & more\u0001', serialTail: ['a', 'b'] }, 3);
	assert.match(bad, /failures="1"/);
	assert.match(bad, /name="b&lt;&amp;&gt;&quot;"/);
	assert.match(bad, /<failure message="retained entry &quot;\/etc\/x&quot; &lt;missing&gt; &amp; more\?" type="vm-test">/);
	assert.match(bad, /<system-out>a\nb<\/system-out>/);
});

test.run();
