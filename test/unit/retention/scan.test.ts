// scan on a real temporary directory (no root needed): hard links, sparse
// files, special files met while walking (skipped, reported) or named
// (refused), the entry cap, and an unreadable path below an entry (refused).
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import { parseList } from '../../../src/retention/list.ts';
import { DEFAULT_CAPS, scan } from '../../../src/retention/scan.ts';

const dirs: string[] = [];
const tmp = () => {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-scan-'));
	dirs.push(d);
	return d;
};
const list = (...lines: string[]) => parseList(Buffer.from(lines.join('\n') + '\n'), 'test.list');

async function refusal(p: Promise<unknown>): Promise<ReimageError> {
	try {
		await p;
	} catch (e) {
		assert.instance(e, ReimageError);
		return e as ReimageError;
	}
	throw new Error('not refused');
}

test('hard links are found once each and point at the first name; their bytes count once', async () => {
	const root = tmp();
	fs.mkdirSync(path.join(root, 'keep'));
	fs.writeFileSync(path.join(root, 'keep/a'), 'abcd');
	fs.linkSync(path.join(root, 'keep/a'), path.join(root, 'keep/b'));
	const s = await scan(root, list('/keep'));
	const b = s.found.find((f) => f.path === '/keep/b');
	assert.is(b?.linkOf, '/keep/a');
	assert.is(s.found.find((f) => f.path === '/keep/a')?.linkOf, undefined);
	assert.is(s.bytes, 4);
});

test('a sparse file is marked sparse; allocated counts its blocks, bytes its size', async () => {
	const root = tmp();
	fs.writeFileSync(path.join(root, 'sparse'), '');
	fs.truncateSync(path.join(root, 'sparse'), 32 << 20);
	fs.writeFileSync(path.join(root, 'dense'), Buffer.alloc(8192, 1));
	const s = await scan(root, list('/sparse', '/dense'));
	assert.ok(s.found[0]?.sparse, 'sparse not detected');
	assert.not.ok(s.found[1]?.sparse, 'dense file marked sparse');
	assert.is(s.bytes, (32 << 20) + 8192);
	assert.ok(s.allocated < 1 << 20, `allocated ${s.allocated}`);
});

test('a socket inside a retained directory is skipped and reported; named by the list it is refused', async () => {
	const root = tmp();
	fs.mkdirSync(path.join(root, 'keep'));
	fs.writeFileSync(path.join(root, 'keep/file'), 'x');
	const sock = path.join(root, 'keep/sock');
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(sock, resolve));
	try {
		const s = await scan(root, list('/keep'));
		assert.equal(s.skipped, [{ path: '/keep/sock', line: 1, kind: 'a socket' }]);
		assert.equal(
			s.found.map((f) => f.path),
			['/keep', '/keep/file'],
		);
		const e = await refusal(scan(root, list('/keep/file', '/keep/sock')));
		assert.is(e.exit, 'retention');
		assert.match(e.message, /\/keep\/sock \(list line 2\) is a socket/);
	} finally {
		await new Promise((resolve) => server.close(resolve));
	}
});

test('more entries than the cap -> refused naming the cap and the flag', async () => {
	const root = tmp();
	fs.mkdirSync(path.join(root, 'many'));
	for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(root, `many/${i}`), 'x');
	const e = await refusal(scan(root, list('/many'), { ...DEFAULT_CAPS, entries: 10 }));
	assert.is(e.exit, 'retention');
	assert.match(e.message, /more than 10 entries .* \(list line 1\).*--max-entries/);
	assert.is((await scan(root, list('/many'), { ...DEFAULT_CAPS, entries: 13 })).found.length, 13);
});

test('a path below a retained directory longer than PATH_MAX -> refused naming it and ENAMETOOLONG', async () => {
	const root = tmp();
	const here = process.cwd();
	try {
		fs.mkdirSync(path.join(root, 'deep'));
		process.chdir(path.join(root, 'deep'));
		for (let i = 0; i < 18; i++) {
			fs.mkdirSync('d'.repeat(240));
			process.chdir('d'.repeat(240));
		}
		fs.writeFileSync('key', 'x');
	} finally {
		process.chdir(here);
	}
	const e = await refusal(scan(root, list('# comment', '/deep')));
	assert.is(e.exit, 'retention');
	assert.match(
		e.message,
		/^retained entry \/deep\/d+(\/d+)* \(list line 2\) cannot be read: \w+ failed with ENAMETOOLONG; the path is longer than the kernel allows/,
	);
});

test('a missing required entry is refused, a missing optional one reported', async () => {
	const root = tmp();
	const s = await scan(root, list('?/nope', '?/no/such/dir/x'));
	assert.is(s.missingOptional.length, 2);
	const e = await refusal(scan(root, list('/nope')));
	assert.match(e.message, /required retained entry \/nope \(list line 1\) is missing/);
});

test.after(() => {
	for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test.run();
