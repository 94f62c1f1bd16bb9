import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { container } from '../../../src/util/containers.ts';

test('container: LUKS and LVM PVs are named with why; file systems and nothing are not containers', () => {
	assert.match(container('crypto_LUKS')?.what ?? '', /LUKS-encrypted/);
	assert.match(container('LVM2_member')?.why ?? '', /logical volumes/);
	for (const t of ['ext4', 'xfs', 'btrfs', 'vfat', undefined, '', 'toString']) assert.is(container(t), undefined, String(t));
});

test.run();
