import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyTicking } from '../../../src/util/copy.ts';

test('a copy reports every byte it moves, and the bytes arrive', async () => {
	const d = mkdtempSync(join(tmpdir(), 'reimage-copy-'));
	const data = Buffer.alloc(9 << 20, 7);
	writeFileSync(join(d, 'a'), data);
	let n = 0;
	let calls = 0;
	await copyTicking(join(d, 'a'), join(d, 'b'), (k) => {
		n += k;
		calls++;
	});
	assert.is(n, data.length);
	assert.ok(calls >= 3, `${calls} ticks`);
	assert.ok(readFileSync(join(d, 'b')).equals(data));
});

test.run();
