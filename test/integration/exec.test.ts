// The one place that starts processes, exercised with real tools: a streamed
// tool reads its input file itself (the file's descriptor as its stdin, not a
// pipe fed by reimage), its failures become one-line errors with their exit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { stream } from '../../src/system/exec.ts';
import { EXIT, ReimageError, ToolError } from '../../src/errors.ts';
import { tmpDir } from '../helpers/sys.ts';

const t = suite('exec');
const dir = tmpDir('reimage-exec-');

async function collect(s: ReturnType<typeof stream>): Promise<string> {
	let out = '';
	for await (const c of s.stdout) out += c.toString();
	await s.done;
	return out;
}

t('a streamed tool gets the input file itself as stdin, and reads all of it', async () => {
	const file = path.join(dir, 'input.bin');
	fs.writeFileSync(file, Buffer.alloc(3 << 20, 7));
	const out = await collect(stream('sh', ['-c', 'readlink /proc/self/fd/0; wc -c'], { inputFile: file }));
	assert.equal(
		out.split('\n').map((l) => l.trim()),
		[file, String(3 << 20), ''],
	);
});

t('an input file that cannot be opened: one sentence naming it, with the exit given, nothing started', () => {
	const missing = path.join(dir, 'missing.zst');
	try {
		stream('zstd', ['-dc'], { inputFile: missing, exit: 'bundle' });
		assert.unreachable();
	} catch (e) {
		assert.instance(e, ReimageError);
		assert.is((e as ReimageError).exit, 'bundle');
		assert.is(EXIT[(e as ReimageError).exit], 3);
		assert.match((e as Error).message, `${missing} cannot be opened as the input of zstd (ENOENT)`);
	}
});

t('a tool that fails: done rejects with its exit status and the tail of its stderr', async () => {
	const file = path.join(dir, 'not-zstd.bin');
	fs.writeFileSync(file, 'plain text, not zstd\n');
	const err = await collect(stream('zstd', ['-dc'], { inputFile: file, exit: 'bundle' })).catch((e: unknown) => e);
	assert.instance(err, ToolError);
	assert.is((err as ToolError).exit, 'bundle');
	assert.match((err as Error).message, /^zstd -dc: exit 1: .*unsupported format/);
});

t.run();
