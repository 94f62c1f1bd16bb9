import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMANDS, helpText, usageLine, type CommandName } from '../../../src/cli/commands.ts';

const names = Object.keys(COMMANDS) as CommandName[];

test('usage lines come from the flag tables: every flag once, required ones bare and first', () => {
	for (const n of names) {
		const line = usageLine(n);
		const flags = Object.entries(COMMANDS[n].flags);
		for (const [f, d] of flags) assert.ok(line.includes(d.required ? ` --${f}` : `[--${f}`), `${n}: --${f} in "${line}"`);
		assert.is([...line.matchAll(/--[a-z-]+/g)].length, flags.length, `${n}: no flag that is not in the table`);
		assert.ok(helpText(n).includes(`Usage: ${line}\n`));
	}
	assert.is(usageLine('restore'), 'reimage restore --from DIR --root PATH [--json]');
	assert.match(usageLine('pack'), /^reimage pack IMAGE --out DIR \[--codec CODEC\]/);
});

test('plan lists only flags that mean something to a plan', () => {
	for (const f of ['yes', 'grow', 'verify-written', 'unmapped', 'keep-dir']) assert.not.ok(f in COMMANDS.plan.flags, f);
	for (const f of ['bundle', 'target', 'retain', 'trust', 'verify-raw', 'no-verify-raw', 'json']) assert.ok(f in COMMANDS.plan.flags, f);
});

test.run();
