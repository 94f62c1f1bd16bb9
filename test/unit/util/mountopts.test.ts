import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readOnlyOptions } from '../../../src/util/mountopts.ts';

test('untrusted read-only mounts never replay a journal and never honour setuid, devices or exec', () => {
	assert.is(readOnlyOptions('ext4'), 'ro,noload,nosuid,nodev,noexec');
	assert.is(readOnlyOptions('xfs'), 'ro,norecovery,nosuid,nodev,noexec');
	assert.is(readOnlyOptions('vfat'), 'ro,nosuid,nodev,noexec');
});

test('btrfs is read without log replay', () => {
	assert.is(readOnlyOptions('btrfs'), 'ro,rescue=nologreplay,nosuid,nodev,noexec');
});

test.run();
