import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError, ToolError, bundleError } from '../../../src/errors.ts';
import { finishHint, phaseError } from '../../../src/stages/phase.ts';
import { Interrupted } from '../../../src/util/interrupt.ts';

const saved = [{ where: '/media/usb/bundle/reimage-retained/KIOSK42-abc', survivesReboot: true }];
const after = { passed: true, node: '/dev/vda', saved, entries: 7 };
const before = { passed: false, node: '/dev/vda', saved: [], entries: 0 };
const code = (e: unknown) => (e as ReimageError).code;

test('after the point of no return every error exits 10 or above, whoever threw it', () => {
	// A tool helper picks 8, a mount 4, a full disk is a plain Node error: the flow owns the phase.
	for (const e of [
		new ToolError('mount', ['/dev/vda1', '/x'], 32, 'wrong fs type'),
		new ReimageError('target', 'mount failed'),
		Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }),
		bundleError('x'),
	]) {
		const out = phaseError(e, after) as ReimageError;
		assert.is(code(out), 11, out.message);
		assert.match(
			out.message,
			/; the 7 retained entries are saved in \/media\/usb\/bundle\/reimage-retained\/KIOSK42-abc: run the same command again to finish/,
		);
		assert.is(out.cause, e);
	}
	assert.is(code(phaseError(new ReimageError('writeFailed', 'write failed; the disk was made unbootable'), after)), 10);
	assert.match((phaseError(new TypeError('x is undefined'), after) as Error).message, /^internal error: x is undefined .*; the 7 retained/);
});

test('before the point of no return errors keep their code; a code claiming "written" there is corrected', () => {
	const e = bundleError('bad bundle');
	assert.is(phaseError(e, before), e);
	assert.is(code(phaseError(new ReimageError('afterWrite', 'x'), before)), 1);
});

test('a signal: cancelled (7) before the point, written-phase after it, even when a killed tool failed first', () => {
	const ctl = new AbortController();
	ctl.abort('SIGINT');
	const tool = new ToolError('lbzip2', ['-dc'], undefined, '');
	const pre = phaseError(tool, { ...before, signal: ctl.signal }) as ReimageError;
	assert.is(pre.code, 7);
	assert.is(
		pre.message,
		'interrupted by SIGINT before the point of no return: nothing was written to /dev/vda; run reimage again when ready',
	);
	const post = phaseError(new Interrupted('SIGTERM'), after) as ReimageError;
	assert.is(post.code, 11);
	assert.match(post.message, /^interrupted by SIGTERM after the point of no return; the 7 retained entries are saved/);
});

test('the hint says where the set survives, or that it is only in RAM, or that there is none', () => {
	assert.is(finishHint({ saved: [], entries: 0 }), 'run the same command again to finish');
	assert.match(
		finishHint({ saved: [{ where: '/run/reimage/retained/x', survivesReboot: false }], entries: 2 }),
		/saved only in RAM \(\/run\/reimage\/retained\/x\): run the same command again before rebooting/,
	);
	assert.match(finishHint({ saved: [], entries: 2 }), /could not be saved before writing/);
});

test('only pointOfNoReturn makes a Passed, and every writing stage demands one', () => {
	// The type is the proof that the point was passed: a cast anywhere else would forge it.
	const dir = path.resolve(import.meta.dirname, '../../../src');
	const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
	const forging = files.filter((f) => /as Passed\b/.test(fs.readFileSync(path.join(dir, f), 'utf8')));
	assert.equal(forging, ['stages/phase.ts']);
	for (const stage of ['write', 'settle', 'restore']) {
		const text = fs.readFileSync(path.join(dir, 'stages', `${stage}.ts`), 'utf8');
		assert.match(text, new RegExp(`export async function ${stage}\\(run: Run, p: Passed\\b`), stage);
	}
});

test.run();
