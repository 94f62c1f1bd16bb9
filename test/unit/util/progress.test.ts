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

test('without a terminal: a step shorter than a second prints nothing; a long one at most a line a second, with percent, bytes, rate and ETA', () => {
	let now = 0;
	let text = '';
	const log = createLog({ write: (t) => void (text += t) }, () => now);
	const quick = createProgress('staging', 100 * 2 ** 20, log, false, () => now);
	for (let i = 0; i < 100; i++) {
		now += 5;
		quick.add(2 ** 20);
	}
	quick.end();
	assert.is(text, '', 'half a second: silent');
	// A 60 s step fed 1000 times a second: bounded by one line a second and by 10 % steps or 10 s.
	const slow = createProgress('staging', 6000 * 2 ** 20, log, false, () => now);
	for (let i = 0; i < 60_000; i++) {
		now += 1;
		slow.add(0.1 * 2 ** 20);
	}
	slow.end();
	const lines = text.trim().split('\n');
	assert.ok(lines.length >= 10 && lines.length <= 12, `${lines.length} lines`);
	for (const l of lines) assert.match(l, /staging: +\d+%  \d+\/6000 MiB  100\.0 MiB\/s  ETA \d+ s$/);
	assert.match(lines.at(-1) ?? '', /100%  6000\/6000 MiB/);
});

test('a slow step with few bytes still reports every 10 s', () => {
	let now = 0;
	let text = '';
	const log = createLog({ write: (t) => void (text += t) }, () => now);
	const p = createProgress('writing', 1000, log, false, () => now);
	for (let i = 0; i < 30; i++) {
		now += 1000;
		p.add(1);
	}
	assert.is(text.trim().split('\n').length, 3, 'at 10, 20 and 30 s (30 bytes of 1000: no 10 % step)');
	p.add(1);
	p.end();
	assert.is(text.trim().split('\n').length, 4, 'the end says where it stopped');
	assert.match(text.trim().split('\n').at(-1) ?? '', /writing: +3%  0\/0 MiB/);
});

test('on a terminal: redrawn at most 5 times a second however often bytes come', () => {
	let now = 0;
	let text = '';
	const log = createLog({ write: (t) => void (text += t) }, () => now);
	const p = createProgress('decoding', 1e9, log, true, () => now);
	for (let i = 0; i < 10_000; i++) {
		now += 1;
		p.add(1e5);
	}
	p.end();
	const draws = text.split('\r').length - 1;
	assert.ok(draws <= 52 && draws >= 49, `${draws} redraws in 10 s`);
	assert.ok(text.endsWith('\n'));
});

test.run();
