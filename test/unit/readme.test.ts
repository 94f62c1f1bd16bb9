// The README's CLI synopsis, kernel-argument table and exit-code table against
// the tables the binary is made from (src/cli/commands.ts, src/boot/cmdline.ts,
// src/errors.ts): a flag, command, kernel argument or exit code added, removed
// or renamed on one side only fails here.
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KERNEL_ARGS } from '../../src/boot/cmdline.ts';
import { COMMANDS } from '../../src/cli/commands.ts';
import { EXIT } from '../../src/errors.ts';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

// section: the README's text from the heading HEAD to the next heading of any level.
function section(head: string): string {
	const at = readme.indexOf(`\n${head}\n`);
	assert.ok(at >= 0, `README has a "${head}" section`);
	const rest = readme.slice(at + head.length + 2);
	const next = rest.search(/\n#{1,6} /);
	return next < 0 ? rest : rest.slice(0, next);
}

// synopsis: each command's lines of the CLI code block (a line "reimage NAME …" and the indented lines after it).
function synopsis(): Map<string, string> {
	const block = /```\n([\s\S]*?)```/.exec(section('## CLI'))?.[1] ?? '';
	const out = new Map<string, string>();
	let current: string | undefined;
	for (const line of block.split('\n')) {
		const m = /^reimage (\S+)/.exec(line);
		if (m?.[1]) {
			current = m[1].startsWith('-') ? undefined : m[1];
			if (current) out.set(current, line);
		} else if (current && /^\s/.test(line)) out.set(current, `${out.get(current)}\n${line}`);
	}
	return out;
}

const flagsIn = (text: string) => new Set([...text.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1] as string));
const flagsOf = (name: string) => Object.keys((COMMANDS as Record<string, { flags: Record<string, unknown> }>)[name]?.flags ?? {});

test('every command of the table is in the README synopsis, and no other', () => {
	assert.equal([...synopsis().keys()].sort(), Object.keys(COMMANDS).sort());
});

test("each command's synopsis names exactly its flags", () => {
	for (const [name, text] of synopsis()) {
		const derived = /\(the options of (\w+) but ([^)]*)\)/.exec(text);
		if (derived?.[1]) {
			// "plan (the options of run but --yes, …)": the flags left out are exactly the ones plan lacks.
			const left = [...flagsIn(derived[2] ?? '')].sort();
			assert.equal(
				left,
				flagsOf(derived[1])
					.filter((f) => !flagsOf(name).includes(f))
					.sort(),
				`${name}: the options it leaves out`,
			);
			continue;
		}
		assert.equal([...flagsIn(text)].sort(), flagsOf(name).sort(), `reimage ${name} in the README synopsis`);
	}
});

test('the kernel-argument table names exactly the arguments the initramfs parses', () => {
	const table = section('### Kernel arguments');
	const named = [...table.matchAll(/^\| `(rd\.reimage[a-z.-]*)/gm)].map((m) => m[1]);
	assert.equal(named.sort(), Object.keys(KERNEL_ARGS).sort());
});

test('the exit-code table has exactly the codes the binary uses', () => {
	const table = section('## Exit codes');
	const codes = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
	assert.equal(
		codes,
		Object.values(EXIT).sort((a, b) => a - b),
	);
});

test.run();
