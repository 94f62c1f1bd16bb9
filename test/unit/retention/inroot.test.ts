import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveInRoot, resolveParent, type Fs } from '../../../src/retention/inroot.ts';
import { bpath, type BPath } from '../../../src/util/bytes.ts';

// A fake tree under /root: /var/run -> /run, /etc/alt -> ../../../../etc/real, loop -> loop.
function fakeFs(links: Record<string, string>, dirs: string[]): Fs {
	return {
		lstat: async (p) =>
			p in links
				? { isSymbolicLink: () => true, isDirectory: () => false }
				: dirs.includes(p)
					? { isSymbolicLink: () => false, isDirectory: () => true }
					: undefined,
		readlink: async (p) => bpath(links[p]!),
	};
}
const fs = fakeFs({ '/root/var/run': '/run', '/root/etc/alt': '../../../../etc/real', '/root/loop': 'loop', '/root/rel': 'etc' }, [
	'/root/var',
	'/root/run',
	'/root/etc',
	'/root/etc/real',
]);
const r = (p: string) => resolveParent('/root', p as BPath, fs);

test('an absolute symlink restarts at the root, not the host', async () => {
	assert.equal(await r('/var/run/reimage.pid'), { dir: '/run', name: 'reimage.pid', hostDir: '/root/run' });
});

test('.. in a link target stops at the root', async () => {
	assert.equal((await r('/etc/alt/x')).hostDir, '/root/etc/real');
});

test('relative links resolve from their directory', async () => {
	assert.equal((await r('/rel/real/x')).hostDir, '/root/etc/real');
});

test('missing parents are returned for creation; the last component is never followed', async () => {
	assert.equal(await r('/new/dir/file'), { dir: '/new/dir', name: 'file', hostDir: '/root/new/dir' });
	assert.equal((await r('/var/run')).name, 'run');
});

test('symlink loops are refused', async () => {
	try {
		await r('/loop/x');
		assert.unreachable();
	} catch (e) {
		assert.match((e as Error).message, /too many symbolic links/);
	}
});

test('a whole path resolves inside the root, the last component too (a bundle path on its medium)', async () => {
	assert.is(await resolveInRoot('/root', '/../../etc' as BPath, fs), '/root/etc');
	assert.is(await resolveInRoot('/root', '/var/run' as BPath, fs), '/root/run');
	assert.is(await resolveInRoot('/root', '/etc/alt/../x' as BPath, fs), '/root/etc/x');
	assert.is(await resolveInRoot('/root', '/' as BPath, fs), '/root');
});

test.run();
