import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from '../../../src/cli/args.ts';
import { COMMANDS, helpText, usageLine, type CommandName, type Flag } from '../../../src/cli/commands.ts';

const names = Object.keys(COMMANDS) as CommandName[];

test('usage lines come from the flag tables: every flag once, required ones bare and first', () => {
	for (const n of names) {
		const line = usageLine(n);
		const flags = Object.entries(COMMANDS[n].flags as Record<string, Flag>);
		for (const [f, d] of flags) assert.ok(line.includes(d.required ? ` --${f}` : `[--${f}`), `${n}: --${f} in "${line}"`);
		assert.is([...line.matchAll(/--[a-z-]+/g)].length, flags.length, `${n}: no flag that is not in the table`);
		// Wrapped for 80 columns: the same words, broken only between options.
		const usage = /\nUsage:([\s\S]*?)\n\n/.exec(`\n${helpText(n)}`)?.[1] ?? '';
		assert.is(usage.replace(/\s+/g, ' ').trim(), line);
	}
	assert.is(usageLine('restore'), 'reimage restore --from DIR --root PATH [--json]');
	assert.match(usageLine('pack'), /^reimage pack IMAGE --out DIR \[--codec CODEC\]/);
});

test('plan lists only flags that mean something to a plan (--grow does: the fit and the partitions after)', () => {
	for (const f of ['yes', 'verify-written', 'unmapped', 'keep-dir']) assert.not.ok(f in COMMANDS.plan.flags, f);
	for (const f of ['bundle', 'target', 'retain', 'no-retain', 'grow', 'trust', 'verify-raw', 'no-verify-raw', 'json'])
		assert.ok(f in COMMANDS.plan.flags, f);
});

test('help and usage fit 80 columns, for every command and the overview', () => {
	for (const n of [undefined, ...names]) {
		for (const l of helpText(n).split('\n')) assert.ok(l.length <= 80, `${n ?? 'reimage'}: ${l.length} columns: ${l}`);
	}
	assert.match(helpText(), /\n {2}vm-test {6}prove a bundle/);
	assert.match(helpText(), /Exit codes below 10: nothing was written\. 0 ok, 1 internal error/);
	assert.match(helpText('run'), /\n {2}--no-retain {13}keep nothing of the old system/);
});

test('a bad option is one clean sentence naming it and the fix', () => {
	const msg = (cmd: CommandName, args: string[]) => {
		try {
			parse(cmd, args);
		} catch (e) {
			return (e as Error).message;
		}
		return 'parsed';
	};
	assert.is(msg('run', ['--frobnicate']), 'reimage run has no option --frobnicate: see reimage run --help');
	assert.is(msg('pack', ['img', '-x']), 'reimage pack has no option -x: see reimage pack --help');
	assert.is(msg('pack', ['img', '--out']), '--out needs a value (--out DIR): see reimage pack --help');
	assert.is(msg('run', ['--yes=1']), '--yes takes no value: write --yes alone (see reimage run --help)');
});

test.run();
