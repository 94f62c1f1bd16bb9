// The import graph of src/: no cycles between files or between folders (each
// folder is a layer that imports only lower ones), and only src/system/
// starts processes (the one OS boundary). Read from the sources as text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');

function sources(dir: string): string[] {
	return fs
		.readdirSync(dir, { withFileTypes: true })
		.flatMap((e) =>
			e.isDirectory() ? (e.name === 'build' ? [] : sources(path.join(dir, e.name))) : /\.ts$/.test(e.name) ? [path.join(dir, e.name)] : [],
		);
}

const files = sources(SRC);
const text = new Map(files.map((f) => [f, fs.readFileSync(f, 'utf8')]));
const imports = (f: string) => [...text.get(f)!.matchAll(/^(?:import|export)\b[^;]*?from\s+['"]([^'"]+)['"]/gms)].map((m) => m[1]!);
const local = (f: string) =>
	imports(f)
		.filter((i) => i.startsWith('.'))
		.map((i) => path.resolve(path.dirname(f), i));
const folder = (f: string) => path.relative(SRC, path.dirname(f)) || '.';

// cycle: one cycle in GRAPH as a list of nodes, or undefined.
function cycle(graph: Map<string, Set<string>>): string[] | undefined {
	const state = new Map<string, 'open' | 'done'>();
	const stack: string[] = [];
	const visit = (v: string): string[] | undefined => {
		state.set(v, 'open');
		stack.push(v);
		for (const w of graph.get(v) ?? []) {
			if (state.get(w) === 'open') return [...stack.slice(stack.indexOf(w)), w];
			if (!state.has(w)) {
				const c = visit(w);
				if (c) return c;
			}
		}
		stack.pop();
		state.set(v, 'done');
		return undefined;
	};
	for (const v of graph.keys()) {
		if (state.has(v)) continue;
		const c = visit(v);
		if (c) return c;
	}
	return undefined;
}

test('no file imports itself back through others', () => {
	const g = new Map(files.map((f) => [f, new Set(local(f))]));
	const c = cycle(g);
	assert.is(c, undefined, `import cycle: ${c?.map((f) => path.relative(SRC, f)).join(' -> ')}`);
});

test('folders form layers: no folder imports one that imports it back', () => {
	const g = new Map<string, Set<string>>();
	for (const f of files) {
		for (const to of local(f)) {
			if (folder(to) === folder(f)) continue;
			if (!g.has(folder(f))) g.set(folder(f), new Set());
			g.get(folder(f))!.add(folder(to));
		}
	}
	const c = cycle(g);
	assert.is(c, undefined, `folder cycle: ${c?.join(' -> ')}`);
});

test('only src/system starts processes (execa, child_process)', () => {
	const offenders = files.filter(
		(f) => folder(f) !== 'system' && imports(f).some((i) => i === 'execa' || i === 'node:child_process' || i === 'child_process'),
	);
	assert.equal(
		offenders.map((f) => path.relative(SRC, f)),
		[],
	);
});

// Calls like run('sfdisk', …) or r('getfattr', …): a tool named where it is started.
const LITERAL_TOOL_CALL = /\b(?:run|stream|r)\s*\(\s*['"`]/g;

test('only src/system names a tool where it starts it: everyone else calls a verb (and never imports run or stream)', () => {
	const offenders: string[] = [];
	for (const f of files) {
		if (folder(f) === 'system') continue;
		const src = text.get(f)!;
		for (const m of src.matchAll(LITERAL_TOOL_CALL))
			offenders.push(`${path.relative(SRC, f)}:${src.slice(0, m.index).split('\n').length}: ${m[0]}`);
		for (const m of src.matchAll(/^import\s*\{([^}]*)\}\s*from\s*['"][^'"]*system\/exec\.ts['"]/gm)) {
			const names = m[1]!.split(',').map((n) => n.trim());
			for (const n of names)
				if (n === 'run' || n === 'stream') offenders.push(`${path.relative(SRC, f)}: imports ${n} from system/exec.ts`);
		}
	}
	assert.equal(offenders, []);
});

test.run();
