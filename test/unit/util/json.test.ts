import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { parseJson } from '../../../src/util/json.ts';

const S = z.strictObject({ a: z.number() });
const fail = (m: string) => new Error(m);

test('valid JSON matching the schema is returned typed', () => {
	assert.equal(parseJson('{"a":1}', S, 'thing x', 'fix it', fail), { a: 1 });
});

test('bad JSON and schema violations are one sentence naming the object and the fix', () => {
	assert.throws(() => parseJson('{', S, 'thing x', 'fix it', fail), /^thing x is not valid JSON \(.*\): fix it$/);
	assert.throws(() => parseJson('{"a":"1"}', S, 'thing x', 'fix it', fail), /^thing x is invalid: a: .*; fix it$/);
});

test.run();
