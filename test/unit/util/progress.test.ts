import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLog } from '../../../src/util/log.ts';
import { createProgress } from '../../../src/util/progress.ts';

test('without a terminal: a plain line per 10 % and the rate and ETA', () => {
	let now = 0;
	let text = '';
	const log = createLog({ write: (t) => void (text += t) }, () => now);
	const p = createProgress('writing', 100 * 2 ** 20, log, false, () => now);
	for (let i = 0; i < 100; i++) {
		now += 100;
		p.add(2 ** 20);
	}
	p.end();
	const lines = text.trim().split('\n');
	assert.is(lines.length, 10);
	assert.match(lines[0]!, /writing:\s+10%\s+10\/100 MiB\s+10\.0 MiB\/s\s+ETA 9 s/);
	assert.match(lines[9]!, /100%/);
	assert.not.match(text, /\r/);
});

test('on a terminal: one redrawn line, ended by a newline', () => {
	let now = 0;
	let text = '';
	const log = createLog({ write: (t) => void (text += t) }, () => now);
	const p = createProgress('writing', 10, log, true, () => now);
	for (let i = 0; i < 10; i++) {
		now += 300;
		p.add(1);
	}
	p.end();
	assert.ok(text.startsWith('\r'));
	assert.ok(text.endsWith('\n'));
	assert.is(text.split('\n').length, 2);
});

test.run();
