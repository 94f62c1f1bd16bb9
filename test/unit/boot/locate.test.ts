import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseLocation } from '../../../src/boot/locate.ts';

test('bundle locations: spec and path, or a by-* device path', () => {
  assert.equal(parseLocation('LABEL=REIMAGE:/bundle'), { device: { kind: 'LABEL', value: 'REIMAGE' }, path: '/bundle' });
  assert.equal(parseLocation('PARTUUID=1234-ab:/b/manifest.json'), { device: { kind: 'PARTUUID', value: '1234-ab' }, path: '/b/manifest.json' });
  assert.equal(parseLocation('UUID=abcd'), { device: { kind: 'UUID', value: 'abcd' }, path: '/' });
  assert.equal(parseLocation('/dev/disk/by-label/STICK:/bundle'), { device: { path: '/dev/disk/by-label/STICK' }, path: '/bundle' });
  assert.throws(() => parseLocation('stick'), /not understood/);
});

test.run();
