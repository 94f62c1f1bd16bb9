// The one JSON contract (src/cli/result.schema.json): every command's --json
// output, on success and on each class of failure, validates against the
// schema, and a failure prints its document too (stdout was empty before).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { copyBundle, MOUNTS, reimage, sharedBundle } from '../helpers/reimage.ts';
import { checkResult } from '../helpers/schema.ts';
import { attachLoop, describe, detachLoop, flipBytes, partNode, sha256, tmpDir } from '../helpers/sys.ts';

const t = suite('json');

// doc: R's stdout as a schema-valid document, with its exit code checked against the process's.
function doc(r: ReturnType<typeof reimage>, status: number): Record<string, unknown> {
	assert.is(r.status, status, describe(r));
	const d = checkResult(r.stdout);
	assert.is(d.exitCode, status);
	if (status)
		assert.is((d.error as { message: string }).message, /reimage: (.*)\n$/.exec(r.stderr)?.[1], 'the error is the sentence on stderr');
	return d;
}

t('usage errors print a document: an unknown option (one clean sentence), a missing flag, an unknown command', () => {
	const u = doc(reimage(['run', '--bundle', '/b', '--target', '/dev/null', '--frobnicate', '--json']), 2);
	assert.equal([u.command, u.outcome, u.phase, u.written], ['run', 'refused', 'usage', false]);
	assert.is((u.error as { message: string }).message, 'reimage run has no option --frobnicate: see reimage run --help');
	assert.equal(u.entries, []);
	const m = doc(reimage(['verify', '--json']), 2);
	assert.match((m.error as { message: string }).message, /^reimage verify needs --bundle/);
	const c = doc(reimage(['frobnicate', '--json']), 2);
	assert.is(c.command, 'frobnicate');
});

t('pack: success, then --out not empty (refused, nothing overwritten), --out a file', () => {
	const out = path.join(tmpDir('reimage-json-pack-'), 'bundle');
	const args = ['pack', fixtures().newImg, '--out', out, '--codec', 'none', ...MOUNTS.flatMap((x) => ['--mount', x])];
	const ok = doc(reimage([...args, '--json']), 0);
	assert.equal([ok.command, ok.outcome, ok.phase, ok.bundle], ['pack', 'success', 'pack', out]);
	const before = fs.readFileSync(path.join(out, 'manifest.json'), 'utf8');
	const again = doc(reimage([...args, '--json']), 2);
	assert.match(
		(again.error as { message: string }).message,
		/^--out \S+ is not empty \(3 entries, e\.g\. image\.bmap\): give a new or empty directory; pack never overwrites a bundle$/,
	);
	assert.is(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'), before, 'the bundle is untouched');
	const file = path.join(out, 'manifest.json');
	const onFile = reimage(['pack', fixtures().newImg, '--out', file]);
	assert.is(onFile.status, 2, describe(onFile));
	assert.match(
		onFile.stderr,
		/^reimage: --out \S+manifest\.json exists and is not a directory: give a new or empty directory for the bundle\n$/,
	);
	assert.not.match(onFile.stderr, /internal error|EEXIST/);
});

t('verify: success and a bundle whose image was changed (3)', () => {
	const ok = doc(reimage(['verify', '--bundle', sharedBundle('zstd'), '--json']), 0);
	assert.equal([ok.command, ok.outcome], ['verify', 'success']);
	const b = copyBundle('zstd');
	flipBytes(path.join(b, 'image.raw.zst'), 200);
	const bad = doc(reimage(['verify', '--bundle', b, '--json']), 3);
	assert.equal([bad.outcome, bad.phase, (bad.error as { name: string }).name], ['refused', 'verify', 'bundle']);
});

t('plan and run: success (plan facts, a run written), and refusals before the flow and inside it', async () => {
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const p = doc(reimage(['plan', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fixtures().list, '--json']), 0);
		assert.equal([p.command, p.outcome, p.written], ['plan', 'planned', false]);
		assert.is((p.planned as unknown[]).length, 19);
		// Refused inside the flow: no retention list, the report says where (preflight) and that nothing was written.
		const none = doc(reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--yes', '--json']), 2);
		assert.equal([none.command, none.phase, none.written], ['run', 'preflight', false]);
		assert.match((none.error as { message: string }).message, /^no retention list .*give --retain LIST, or --no-retain to keep nothing$/);
		// Refused before the flow: a partition as the target names its disk.
		const part = doc(
			reimage(['plan', '--bundle', sharedBundle('zstd'), '--target', partNode(dev, 1), '--retain', fixtures().list, '--json']),
			4,
		);
		assert.is(
			(part.error as { message: string }).message,
			`target ${partNode(dev, 1)} is partition 1 of the disk ${dev}, not a whole disk: give ${dev} to reimage the whole disk`,
		);
		assert.is(await sha256(dev), before, 'nothing written by plan or the refusals');
		const r = doc(reimage(['run', '--bundle', sharedBundle('zstd'), '--target', dev, '--retain', fixtures().list, '--yes', '--json']), 0);
		assert.equal([r.command, r.outcome, r.phase, r.written], ['run', 'success', 'finish', true]);
	} finally {
		detachLoop(dev);
	}
});

t('a target that does not exist: "does not exist", 4, for run, plan and fingerprint', () => {
	for (const cmd of [['plan'], ['run', '--yes']]) {
		const r = doc(
			reimage([...cmd, '--bundle', sharedBundle('zstd'), '--target', '/dev/no-such-disk', '--retain', fixtures().list, '--json']),
			4,
		);
		assert.match((r.error as { message: string }).message, /^target \/dev\/no-such-disk does not exist: give a whole disk/);
	}
	const f = reimage(['fingerprint', '/dev/no-such-disk']);
	assert.is(f.status, 4, describe(f));
	assert.match(f.stderr, /^reimage: device \/dev\/no-such-disk does not exist: /);
});

t.run();
