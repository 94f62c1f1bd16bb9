// A fake OS boundary for unit tests: a Sys whose runner answers only the
// commands a test scripted (by exact argv) and throws on any other, naming it;
// whose sysfs and /proc are a temporary tree (filled from the captured
// fixtures in test/fixtures/tools/ or by hand); whose block devices are a
// table (path -> major:minor); and whose clock only moves when code sleeps.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ToolError } from '../../src/errors.ts';
import type { Run, RunOptions, RunResult } from '../../src/system/exec.ts';
import type { BlockDev, Sys } from '../../src/system/sys.ts';

export const TOOLS = path.resolve(import.meta.dirname, '..', 'fixtures', 'tools');

export type Call = { argv: string; opts: RunOptions };
// A scripted answer: output and exit code, or a function of the call (for side effects, e.g. partx adding partitions).
export type Reply = Partial<RunResult> | ((c: Call) => Partial<RunResult>);

export type FakeSys = Sys & {
	// root of the fake tree: ROOT/sys, ROOT/proc, ROOT/modules
	root: string;
	// every command run, as "tool arg arg"
	calls: string[];
	// every sleep, in ms
	sleeps: number[];
	// script ARGV (["tool", ...args] or "tool arg arg"): each call takes the next reply; the last one repeats.
	script: (argv: string | readonly string[], ...replies: Reply[]) => FakeSys;
	// script a captured command by its name in captures.tsv (its argv, stdout, stderr and exit code).
	captured: (name: string) => FakeSys;
	// a block device node (and, for openers, a path a /proc fd link may point at)
	device: (p: string, dev: string) => FakeSys;
	// write FILE (below root) with TEXT; a "-> target" text makes a symlink
	file: (rel: string, text: string) => FakeSys;
	// load a captured sysfs tree (sysfs-*.tsv) below root/sys, and its device nodes below /dev
	sysfs: (name: string) => FakeSys;
	// nodes whose exclusive open fails with this errno code
	claimed: Map<string, string>;
	// remove the tree
	done: () => void;
};

const key = (argv: string | readonly string[]) => (typeof argv === 'string' ? argv : argv.join(' '));

// readCapture: the captured stdout, stderr and exit code of NAME, and its argv.
export function readCapture(name: string): { argv: string; result: RunResult } {
	const line = fs
		.readFileSync(path.join(TOOLS, 'captures.tsv'), 'utf8')
		.split('\n')
		.find((l) => l.startsWith(`${name}\t`));
	if (!line) throw new Error(`no capture named ${name} in test/fixtures/tools/captures.tsv`);
	const [, exit, argv] = line.split('\t');
	const read = (ext: string) =>
		fs.existsSync(path.join(TOOLS, `${name}.${ext}`)) ? fs.readFileSync(path.join(TOOLS, `${name}.${ext}`), 'utf8') : '';
	return { argv: argv ?? '', result: { stdout: read('txt'), stderr: read('err'), exitCode: Number(exit) } };
}

// fakeSys: a Sys that starts nothing; see FakeSys.
export function fakeSys(): FakeSys {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-fake-'));
	for (const d of ['sys', 'proc', 'modules']) fs.mkdirSync(path.join(root, d));
	const scripts = new Map<string, Reply[]>();
	const devices = new Map<string, string>();
	let now = 1_000_000;
	const run: Run = async (tool, args, opts = {}) => {
		const argv = [tool, ...args].join(' ');
		f.calls.push(argv);
		const replies = scripts.get(argv);
		if (!replies?.length) throw new Error(`fake sys: command not scripted: ${argv}`);
		const next = replies.length > 1 ? replies.shift()! : replies[0]!;
		const r = typeof next === 'function' ? next({ argv, opts }) : next;
		const result = { stdout: r.stdout ?? '', stderr: r.stderr ?? '', exitCode: r.exitCode ?? 0 };
		// What exec.ts's run does with an exit code the caller did not accept.
		if (!(opts.okCodes ?? [0]).includes(result.exitCode)) throw new ToolError(tool, args, result.exitCode, result.stderr.trim(), opts.exit);
		return result;
	};
	const blockDev = async (p: string): Promise<BlockDev | undefined> => {
		const dev = devices.get(p);
		if (dev) return { node: p, dev };
		// A /proc/PID/fd link in the tree: follow it to a device in the table.
		const to = await fs.promises.readlink(p).catch(() => undefined);
		const linked = to === undefined ? undefined : devices.get(to);
		return linked ? { node: to!, dev: linked } : undefined;
	};
	const f: FakeSys = {
		root,
		run,
		stream: (tool, args) => {
			throw new Error(`fake sys: stream not scripted: ${[tool, ...args].join(' ')}`);
		},
		sysRoot: path.join(root, 'sys'),
		procRoot: path.join(root, 'proc'),
		devRoot: '/dev',
		modulesRoot: path.join(root, 'modules'),
		clock: () => now,
		sleep: async (ms) => {
			f.sleeps.push(ms);
			now += ms;
		},
		blockDev,
		openExclusive: async (node) => {
			const code = f.claimed.get(node);
			if (code) throw Object.assign(new Error(`${code}: ${node}`), { code });
		},
		calls: [],
		sleeps: [],
		claimed: new Map(),
		script: (argv, ...replies) => {
			scripts.set(key(argv), replies.length ? replies : [{}]);
			return f;
		},
		captured: (name) => {
			const c = readCapture(name);
			return f.script(c.argv, c.result);
		},
		device: (p, dev) => {
			devices.set(p, dev);
			return f;
		},
		file: (rel, text) => {
			const p = path.join(root, rel);
			fs.mkdirSync(path.dirname(p), { recursive: true });
			fs.rmSync(p, { force: true, recursive: true });
			if (text.startsWith('-> ')) fs.symlinkSync(text.slice(3), p);
			else fs.writeFileSync(p, `${text}\n`);
			return f;
		},
		sysfs: (name) => loadSysfs(f, name),
		done: () => fs.rmSync(root, { recursive: true, force: true }),
	};
	return f;
}

// loadSysfs: the captured lines as files and links below ROOT/sys (a link's
// target is below /sys too); every disk and partition also gets
// /sys/class/block/NAME and /sys/block/NAME (disks), and a node /dev/NAME.
function loadSysfs(f: FakeSys, name: string): FakeSys {
	const rows = fs
		.readFileSync(path.join(TOOLS, `${name}.tsv`), 'utf8')
		.split('\n')
		.filter(Boolean)
		.map((l) => l.split('\t') as [string, string]);
	for (const [rel, value] of rows) if (!value.startsWith('-> ')) f.file(`sys/${rel}`, value);
	for (const [rel, value] of rows) {
		if (!value.startsWith('-> ')) continue;
		const target = path.join(f.sysRoot, value.slice(3));
		const kname = path.basename(target);
		fs.mkdirSync(target, { recursive: true });
		f.file(`sys/${rel}`, `-> ${target}`);
		f.file(`sys/class/block/${kname}`, `-> ${target}`);
		if (!fs.existsSync(path.join(target, 'partition'))) f.file(`sys/block/${kname}`, `-> ${target}`);
		f.device(`/dev/${kname}`, rel.replace(/^dev\/block\//, ''));
	}
	return f;
}

// sysfsPartition: add (or resize) partition N of disk DISK in the fake sysfs tree, as BLKPG would.
export function sysfsPartition(f: FakeSys, disk: string, p: { number: number; start: number; size: number; dev: string }): void {
	const dir = fs.realpathSync(path.join(f.sysRoot, 'class/block', disk));
	const name = `${disk}p${p.number}`;
	const rel = path.relative(f.root, path.join(dir, name));
	for (const [k, v] of Object.entries({ partition: p.number, start: p.start, size: p.size, dev: p.dev })) f.file(`${rel}/${k}`, String(v));
	f.file(`sys/dev/block/${p.dev}`, `-> ${path.join(dir, name)}`);
	f.file(`sys/class/block/${name}`, `-> ${path.join(dir, name)}`);
	f.device(`/dev/${name}`, p.dev);
}

// sysfsDropPartitions: remove every partition of DISK from the fake sysfs tree (a BLKRRPART that found no table).
export function sysfsDropPartitions(f: FakeSys, disk: string): void {
	const dir = fs.realpathSync(path.join(f.sysRoot, 'class/block', disk));
	for (const e of fs.readdirSync(dir)) if (fs.existsSync(path.join(dir, e, 'partition'))) fs.rmSync(path.join(dir, e), { recursive: true });
}
