import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../../src/stages/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'reimage-lock-'));

test('a second run cannot start while the first holds the lock', async () => {
  const path = join(dir, 'a');
  const release = await acquireLock(path);
  assert.is(readFileSync(path, 'utf8').trim(), String(process.pid));
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
  assert.is(readFileSync(path, 'utf8').trim(), String(process.pid));
  await release();
});

test.run();
