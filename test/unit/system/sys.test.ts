// hostSys: the real boundary's file-only parts (no process is started here).
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostSys, major, minor } from '../../../src/system/sys.ts';

test('blockDev: only block devices count (a character device, a file, a dangling link and nothing are not)', async () => {
	const d = mkdtempSync(join(tmpdir(), 'reimage-sys-'));
	writeFileSync(join(d, 'f'), '');
	symlinkSync(join(d, 'gone'), join(d, 'dangling'));
	for (const p of ['/dev/null', join(d, 'f'), join(d, 'dangling'), join(d, 'nothing')]) assert.is(await hostSys.blockDev(p), undefined, p);
	rmSync(d, { recursive: true });
});

test('major/minor decode a dev_t the way glibc does (large minors of nvme and loop partitions)', () => {
	assert.equal([major(0x0701), minor(0x0701)], [7, 1]);
	// 259:300: minor 300 = 0x12c -> low byte 0x2c, the rest above the major's 12 bits.
	const rdev = (0x103 << 8) | 0x2c | (0x1 << 20);
	assert.equal([major(rdev), minor(rdev)], [259, 300]);
});

test('the host roots and a clock that is the wall clock', () => {
	assert.equal([hostSys.sysRoot, hostSys.procRoot, hostSys.devRoot, hostSys.modulesRoot], ['/sys', '/proc', '/dev', '/lib/modules']);
	assert.ok(Math.abs(hostSys.clock() - Date.now()) < 1000);
});

test.run();
