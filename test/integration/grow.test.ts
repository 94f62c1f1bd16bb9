// run --grow: the last partition and its ext4 grow to the end of a larger disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { reimage, sharedBundle } from '../helpers/reimage.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	exec,
	partNode,
	partNumberByName,
	partxUpdate,
	sfdiskJson,
	sh,
	withMount,
} from '../helpers/sys.ts';

const t = suite('run --grow');

t('last partition and its file system fill the disk; retained files survive', async () => {
	const fx = fixtures();
	const dev = attachLoop(freshOldDisk());
	try {
		const r = reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fx.list, '--grow', '--yes']);
		assert.is(r.status, 0, describe(r));
		partxUpdate(dev);
		const table = sfdiskJson(dev);
		const want = sfdiskJson(fx.newImg);
		const last = table.partitions[table.partitions.length - 1]!;
		const wantLast = want.partitions[want.partitions.length - 1]!;
		assert.is(last.start, wantLast.start, 'last partition moved');
		assert.ok(last.size > wantLast.size, `last partition not grown: ${last.size} sectors`);
		// Within 1 MiB of the last usable sector (alignment may leave a little).
		assert.ok((table.lastlba ?? 0) - (last.start + last.size - 1) < 2048, 'last partition does not reach the end');
		const n = partNode(dev, partNumberByName(table, 'data'));
		const f = exec('fsck.ext4', ['-fn', n]);
		assert.is(f.status, 0, describe(f));
		const info = sh('dumpe2fs', ['-h', n]);
		const blocks = Number(/^Block count:\s+(\d+)/m.exec(info)?.[1]);
		const bsize = Number(/^Block size:\s+(\d+)/m.exec(info)?.[1]);
		assert.ok(blocks * bsize > (last.size - 2048) * 512, `ext4 not grown: ${blocks} x ${bsize} bytes`);
		await withMount(n, (data) => {
			assert.ok(fs.existsSync(path.join(data, 'config')), '/kiosk/config lost');
			assert.ok(fs.existsSync(path.join(data, 'README-new')), 'README-new lost');
		});
	} finally {
		detachLoop(dev);
	}
});

t.run();
