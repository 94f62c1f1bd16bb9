import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queueLimit } from '../../../src/target/sysfs.ts';

test('queue limits are read from sysfs; a missing or zero limit means no offload', async () => {
  const sys = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
  const q = join(sys, 'class/block/vda/queue');
  mkdirSync(q, { recursive: true });
  writeFileSync(join(q, 'write_zeroes_max_bytes'), '33554432\n');
  writeFileSync(join(q, 'discard_max_bytes'), '0\n');
  assert.is(await queueLimit('vda', 'write_zeroes_max_bytes', sys), 33554432);
  assert.is(await queueLimit('vda', 'discard_max_bytes', sys), 0);
  assert.is(await queueLimit('sdz', 'discard_max_bytes', sys), 0);
  rmSync(sys, { recursive: true, force: true });
});

test.run();
