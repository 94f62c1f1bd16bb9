import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Config, narrow } from '../../../src/boot/config.ts';

const base = Config.parse({ mode: 'interactive', target: 'serial:K42', bundle: 'LABEL=R:/b' });

test('defaults are the safe ones', () => {
  assert.equal(Config.parse({}), { mode: 'auto', onFailure: 'halt', allowShell: false, diagnosticShells: false, after: 'reboot', grow: false, verifyWritten: false, unmapped: 'zero', allowDowngrade: false });
  // verifyRaw absent: a bundle without a block map is decoded and checked before writing (stages/proof.ts).
  assert.is(Config.parse({}).verifyRaw, undefined);
  assert.not.ok(Config.safeParse({ mode: 'auto', surprise: 1 }).success, 'unknown keys refused');
});

test('the entry cap is a positive whole number', () => {
  assert.is(Config.parse({ maxEntries: 200000 }).maxEntries, 200000);
  for (const bad of [0, -1, 1.5, '100']) assert.not.ok(Config.safeParse({ maxEntries: bad }).success, `maxEntries ${String(bad)} accepted`);
});

test('kernel arguments narrow: a safer mode is accepted, a more destructive one refused', () => {
  assert.is(narrow(base, { armed: true, mode: 'plan' }).mode, 'plan');
  assert.throws(() => narrow(base, { armed: true, mode: 'auto' }), /would loosen the baked mode interactive/);
});

test('a shell on failure needs the policy to allow shells', () => {
  assert.throws(() => narrow(base, { armed: true, onFailure: 'shell' }), /allowShell is false/);
  assert.is(narrow({ ...base, allowShell: true }, { armed: true, onFailure: 'shell' }).onFailure, 'shell');
});

test('target selectors add up; a different bundle location is refused', () => {
  assert.equal(narrow(base, { armed: true, target: 'size:1G-2T' }).targets, ['serial:K42', 'size:1G-2T']);
  assert.throws(() => narrow(base, { armed: true, bundle: 'LABEL=OTHER:/b' }), /differs from the baked bundle location/);
  assert.is(narrow(Config.parse({}), { armed: true, bundle: 'LABEL=X:/b' }).bundle, 'LABEL=X:/b');
});

test.run();
