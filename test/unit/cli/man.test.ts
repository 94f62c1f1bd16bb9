import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KERNEL_ARGS } from '../../../src/boot/cmdline.ts';
import { COMMANDS, type CommandName, type Flag } from '../../../src/cli/commands.ts';
import { bashCompletion, valueCompletion } from '../../../src/cli/completion.ts';
import { manPage, roff } from '../../../src/cli/man.ts';
import { EXIT } from '../../../src/errors.ts';

const names = Object.keys(COMMANDS) as CommandName[];
const flags = (n: CommandName) => Object.entries(COMMANDS[n].flags as Record<string, Flag>);

test('the manual page has every command, every option, every kernel argument and every exit code', () => {
	const man = manPage();
	for (const n of names) {
		assert.ok(man.includes(`.SS ${roff(n)}\n`), n);
		for (const [f] of flags(n)) assert.ok(man.includes(`.B \\-\\-${roff(f)}`), `${n} --${f}`);
	}
	for (const k of Object.keys(KERNEL_ARGS)) assert.ok(man.includes(`.B ${roff(k)}\n`), k);
	for (const code of Object.values(EXIT)) assert.ok(man.includes(`.B ${code}\n`), String(code));
});

test('roff: backslashes, hyphens, a leading dot or quote and non-ASCII are escaped', () => {
	assert.is(roff('a\\b'), 'a\\eb');
	assert.is(roff('--x'), '\\-\\-x');
	assert.is(roff(".TH x\n'y"), "\\&.TH x\n\\&'y");
	assert.is(roff('a … b'), 'a \\[u2026] b');
	for (const line of manPage().split('\n')) assert.ok(/^[\x20-\x7e]*$/.test(line), `non-ASCII or control character in: ${line}`);
});

test('bash completion: every command, and every option of each command in its own case', () => {
	const script = bashCompletion();
	const top = /_reimage_reply -W '([^']*)'/.exec(script)?.[1]?.split(' ') ?? [];
	assert.equal(top.sort(), [...names, '--help', '--version'].sort());
	for (const n of names) {
		const body = script.split(`\n\t${n})\n`)[1]?.split('\n\t\t;;')[0] ?? '';
		for (const [f, d] of flags(n)) {
			assert.ok(body.includes(` --${f} `) || body.includes(`'--${f} `) || body.includes(` --${f}'`), `${n} --${f}`);
			if (d.type === 'string') assert.ok(body.includes(`\t--${f}) `), `${n} --${f} completes its value`);
		}
	}
});

test('a value is completed by what it is: words, directories, files, devices, or nothing', () => {
	assert.is(valueCompletion('CODEC'), "_reimage_reply -W 'zstd gzip xz bzip2 none'");
	assert.is(valueCompletion('DIR'), '_reimage_reply -d');
	assert.is(valueCompletion('KEY|DIR'), '_reimage_reply -f');
	assert.match(valueCompletion('DEVICE'), /\/dev\//);
	assert.is(valueCompletion('URL'), 'COMPREPLY=()');
	assert.is(valueCompletion('SIZE'), 'COMPREPLY=()');
});

test.run();
