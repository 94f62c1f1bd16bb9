// copyBytes: a sparse copy keeps the holes (trailing one too) and every byte;
// a dense copy writes every block, zeros included.
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyBytes } from '../../../src/retention/sparse.ts';

async function copy(src: string, dst: string, sparse: boolean): Promise<number> {
	const from = await open(src, 'r');
	const to = await open(dst, 'wx');
	try {
		return await copyBytes(from, to, sparse);
	} finally {
		await from.close();
		await to.close();
	}
}

test('sparse copy: holes kept, bytes equal, unaligned data and a trailing hole', async () => {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-sparse-'));
	try {
		const src = path.join(d, 'src');
		const fd = fs.openSync(src, 'w');
		fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
		fs.writeSync(fd, Buffer.alloc(5000, 7), 0, 5000, (3 << 20) + 1234);
		fs.closeSync(fd);
		fs.truncateSync(src, (9 << 20) + 3);
		assert.is(await copy(src, path.join(d, 'sparse'), true), (9 << 20) + 3);
		const st = fs.statSync(path.join(d, 'sparse'));
		assert.is(st.size, (9 << 20) + 3);
		assert.ok(st.blocks * 512 <= 32 << 10, `allocated ${st.blocks * 512}`);
		assert.ok(fs.readFileSync(path.join(d, 'sparse')).equals(fs.readFileSync(src)));
		await copy(src, path.join(d, 'dense'), false);
		assert.ok(fs.statSync(path.join(d, 'dense')).blocks * 512 >= 9 << 20, 'dense copy not dense');
		assert.ok(fs.readFileSync(path.join(d, 'dense')).equals(fs.readFileSync(src)));
	} finally {
		fs.rmSync(d, { recursive: true, force: true });
	}
});

test.run();
