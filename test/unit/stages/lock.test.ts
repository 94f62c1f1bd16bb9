import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../../src/stages/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'reimage-lock-'));

test('a second run cannot start while the first holds the lock', async () => {
	const path = join(dir, 'a');
	const release = await acquireLock(path);
	assert.match(readFileSync(path, 'utf8'), new RegExp(`^${process.pid}\\b`));
	try {
		await acquireLock(path);
		assert.unreachable();
	} catch (e) {
		assert.is((e as { code: number }).code, 4);
		assert.match((e as Error).message, new RegExp(`another reimage \\(pid ${process.pid}\\) is running`));
	}
	await release();
	assert.not.ok(existsSync(path));
});

test('a lock left by a dead process is taken over', async () => {
	const path = join(dir, 'b');
	writeFileSync(path, '999999\n');
	const release = await acquireLock(path, () => false);
	assert.match(readFileSync(path, 'utf8'), new RegExp(`^${process.pid}\\b`));
	await release();
	assert.equal(
		readdirSync(dir).filter((f) => f.startsWith('b.')),
		[],
		'no claim or temp file left behind',
	);
});

const STALE = 999999;
const notStale = (pid: number) => pid !== STALE;

test('the lock never appears without its pid (it is linked into place whole)', async () => {
	const path = join(dir, 'c');
	let seen = 0;
	let empty = 0;
	let done = false;
	const watcher = (async () => {
		while (!done) {
			const text = await readFile(path, 'utf8').catch(() => undefined);
			if (text !== undefined) {
				seen++;
				if (!/^\d+\b/.test(text)) empty++;
			}
			await new Promise((r) => setImmediate(r));
		}
	})();
	for (let i = 0; i < 200; i++) {
		const release = await acquireLock(path, notStale);
		await new Promise((r) => setImmediate(r));
		await release();
	}
	done = true;
	await watcher;
	assert.ok(seen > 0, 'the reader saw the lock at least once');
	assert.is(empty, 0, `a reader saw the lock without a pid ${empty} of ${seen} times`);
});

test('a stale lock raced for by 20 takers is taken over by exactly one; the others are told who holds it', async () => {
	for (const stale of [`${STALE}\n`, `${STALE} 0123456789abcdef\n`, '', `${STALE}\n`, '', `${STALE}\n`]) {
		const path = join(dir, `d${stale.length}`);
		writeFileSync(path, stale);
		// Started a little apart, so one taker's read, remove and create interleave with another's.
		const results = await Promise.allSettled(
			Array.from({ length: 20 }, (_, i) => new Promise((r) => setTimeout(r, (i % 5) * 0.5)).then(() => acquireLock(path, notStale))),
		);
		const won = results.filter((r) => r.status === 'fulfilled');
		assert.is(won.length, 1, `${won.length} takers won the stale lock ${JSON.stringify(stale)}`);
		for (const r of results)
			if (r.status === 'rejected')
				assert.match(String(r.reason.message), new RegExp(`another reimage \\(pid ${process.pid}\\) is running`));
		await (won[0] as PromiseFulfilledResult<() => Promise<void>>).value();
		assert.not.ok(existsSync(path));
		assert.equal(
			readdirSync(dir).filter((f) => f.startsWith(`d${stale.length}.`)),
			[],
			'no claim or temp file left behind',
		);
	}
});

test('a takeover claim left by a process that died is itself taken over; a live claim is waited for', async () => {
	const path = join(dir, 'e');
	writeFileSync(path, `${STALE} 00000000000000aa\n`);
	writeFileSync(`${path}.takeover-00000000000000aa`, `${STALE} 00000000000000bb\n`);
	const release = await acquireLock(path, notStale);
	assert.match(readFileSync(path, 'utf8'), new RegExp(`^${process.pid} `));
	await release();
});

test('release removes only its own lock', async () => {
	const path = join(dir, 'f');
	const release = await acquireLock(path, notStale);
	writeFileSync(path, '4242 00000000000000cc\n');
	await release();
	assert.is(readFileSync(path, 'utf8'), '4242 00000000000000cc\n', "another owner's lock is left alone");
});

test.run();
