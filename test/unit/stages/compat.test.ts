import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkCompatible, checkDowngrade, compareVersions } from '../../../src/stages/compat.ts';
import type { Manifest } from '../../../src/bundle/manifest.ts';

const m = (o: Partial<Manifest>) => o as Manifest;

test('versions compare numerically by segment', () => {
	assert.is(compareVersions('2026.10.1', '2026.9.5'), 1);
	assert.is(compareVersions('1.2', '1.2.0'), 0);
	assert.is(compareVersions('1.10-rc1', '1.10-rc2'), -1);
});

test('a required compatible string must match exactly', () => {
	checkCompatible(m({ compatible: 'kiosk-x86' }), 'kiosk-x86');
	checkCompatible(m({}), undefined);
	assert.throws(
		() => checkCompatible(m({ compatible: 'atm-arm' }), 'kiosk-x86'),
		/bundle is for "atm-arm" but this machine needs "kiosk-x86"/,
	);
	assert.throws(() => checkCompatible(m({}), 'kiosk-x86'), /no compatible string/);
});

test('a downgrade is refused unless allowed; unknown versions pass', () => {
	assert.throws(() => checkDowngrade(m({ version: '1.9' }), '1.10', false), /older than the installed 1\.10/);
	checkDowngrade(m({ version: '1.9' }), '1.10', true);
	checkDowngrade(m({ version: '1.10' }), '1.10', false);
	checkDowngrade(m({}), '1.10', false);
	checkDowngrade(m({ version: '1' }), undefined, false);
});

test.run();
