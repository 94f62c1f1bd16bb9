// Progress on the built binary, under a pseudo-terminal (script(1)) and
// without one: pack's hash/map, compression and hash, and verify's checks
// each draw one line redrawn with \r on a terminal; on a pipe nothing is
// redrawn and a short step stays silent (unit/util/progress checks the rate).
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures } from '../helpers/fixtures.ts';
import { BIN, MOUNTS, reimage, sharedBundle } from '../helpers/reimage.ts';
import { describe, exec, tmpDir } from '../helpers/sys.ts';

const t = suite('progress');

// pty: CMD run under a pseudo-terminal; what it printed (stdout and stderr both reach the terminal).
const pty = (cmd: string) => exec('script', ['-qec', cmd, '/dev/null']);

const line = (label: string) => new RegExp(`\\r${label}: 100%  \\d+/\\d+ MiB  [\\d.]+ MiB/s  ETA 0 s {3}\\r?\\n`);

t('pack and verify on a terminal: one redrawn line per long step, ending at 100 %', () => {
	const out = path.join(tmpDir('reimage-progress-'), 'bundle');
	const p = pty(`${BIN} pack ${fixtures().newImg} --out ${out} ${MOUNTS.map((m) => `--mount ${m}`).join(' ')}`);
	assert.is(p.status, 0, describe(p));
	for (const label of ['hashing and mapping', 'compressing', 'hashing']) assert.match(p.stdout, line(label), label);
	const v = pty(`${BIN} verify --bundle ${out}`);
	assert.is(v.status, 0, describe(v));
	for (const label of ['checking', 'decoding']) assert.match(v.stdout, line(label), label);
});

t('without a terminal: nothing redrawn, a short step silent', () => {
	const v = reimage(['verify', '--bundle', sharedBundle('zstd')]);
	assert.is(v.status, 0, describe(v));
	assert.not.match(v.stderr, /\r/);
	for (const l of v.stderr.split('\n').filter((x) => /%/.test(x))) assert.match(l, /: +\d+%  \d+\/\d+ MiB  [\d.]+ MiB\/s  ETA \d+ s$/);
});

t.run();
