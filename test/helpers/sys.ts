// System helpers for the integration tests: processes, loop devices, mounts,
// hashes. Everything that attaches or mounts registers itself, and an exit hook
// undoes whatever a failing test left behind (tests still clean up in finally).
import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Result {
	status: number | null;
	signal: string | null;
	stdout: string;
	stderr: string;
}

export interface ExecOptions {
	input?: string | Buffer;
	/** stdin: 'pipe' (default when input given) or 'ignore' (/dev/null). */
	stdin?: 'pipe' | 'ignore' | 'inherit';
	cwd?: string;
	env?: NodeJS.ProcessEnv;
	/** Safety net against hangs only; never used to judge a result. */
	killAfterMs?: number;
}

/** Run a command; never throws on a non-zero exit. */
export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Result {
	const o: SpawnSyncOptions = {
		cwd: opts.cwd,
		env: opts.env ?? process.env,
		stdio: [opts.input !== undefined ? 'pipe' : (opts.stdin ?? 'ignore'), 'pipe', 'pipe'],
		maxBuffer: 256 * 1024 * 1024,
		timeout: opts.killAfterMs ?? 15 * 60 * 1000,
		killSignal: 'SIGKILL',
	};
	if (opts.input !== undefined) o.input = opts.input;
	const r = spawnSync(cmd, args, o);
	if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
		return { status: 127, signal: null, stdout: '', stderr: `${cmd}: not found` };
	}
	return {
		status: r.status,
		signal: r.signal,
		stdout: r.stdout ? r.stdout.toString() : '',
		stderr: r.stderr ? r.stderr.toString() : '',
	};
}

/** Run a command; throw with its stderr when it does not exit 0. */
export function sh(cmd: string, args: readonly string[], opts: ExecOptions = {}): string {
	const r = exec(cmd, args, opts);
	if (r.status !== 0) {
		throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stderr.trim()}\n${r.stdout.trim()}`);
	}
	return r.stdout;
}

export function describe(r: Result): string {
	return `exit ${r.status ?? r.signal}\n--- stdout ---\n${r.stdout.trimEnd()}\n--- stderr ---\n${r.stderr.trimEnd()}`;
}

// ------------------------------------------------------------ cleanup registry

const mounts = new Set<string>();
const loops = new Set<string>();
const tmpdirs = new Set<string>();

process.on('exit', () => {
	for (const m of [...mounts].reverse()) {
		exec('umount', [m]);
		exec('umount', ['-l', m]);
	}
	for (const l of loops) {
		exec('partx', ['-d', l]);
		exec('losetup', ['-d', l]);
	}
	for (const d of tmpdirs) {
		try {
			fs.rmSync(d, { recursive: true, force: true });
		} catch {
			/* best effort at exit */
		}
	}
});

/** A fresh temporary directory, removed at process exit (or by the caller). */
export function tmpDir(prefix = 'reimage-test-'): string {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	tmpdirs.add(d);
	return d;
}

export function rmTmp(d: string): void {
	fs.rmSync(d, { recursive: true, force: true });
	tmpdirs.delete(d);
}

// ------------------------------------------------------------ files

/** Copy a (sparse) disk image cheaply. */
export function copySparse(src: string, dst: string): void {
	sh('cp', ['--sparse=always', src, dst]);
}

/** A zero-filled sparse file of `bytes` bytes. */
export function makeBlank(file: string, bytes: number): void {
	const fd = fs.openSync(file, 'w');
	try {
		fs.ftruncateSync(fd, bytes);
	} finally {
		fs.closeSync(fd);
	}
}

export async function sha256(file: string): Promise<string> {
	const h = createHash('sha256');
	const s = fs.createReadStream(file, { highWaterMark: 4 * 1024 * 1024 });
	for await (const chunk of s) h.update(chunk as Buffer);
	return h.digest('hex');
}

/** sha256 of a whole block device (or file); alias that reads the bytes. */
export const sha256Device = sha256;

/** Flip `count` bytes at `offset` in place. */
export function flipBytes(file: string, offset: number, count = 16): void {
	const fd = fs.openSync(file, 'r+');
	try {
		const b = Buffer.alloc(count);
		fs.readSync(fd, b, 0, count, offset);
		for (let i = 0; i < count; i++) b[i] = (b[i] ?? 0) ^ 0xa5;
		fs.writeSync(fd, b, 0, count, offset);
	} finally {
		fs.closeSync(fd);
	}
}

// ------------------------------------------------------------ loop devices

/** Ask the kernel to (re)create the partition nodes of `dev` (it never does itself here). */
export function partxUpdate(dev: string): void {
	// partx -u fails on a device without a partition table: that is fine.
	exec('partx', ['-u', dev]);
}

/** Attach `file` to a free loop device (-P), create partition nodes, return /dev/loopN. */
export function attachLoop(file: string, opts: { readOnly?: boolean } = {}): string {
	const args = ['-fP', '--show'];
	if (opts.readOnly) args.push('-r');
	args.push(file);
	const dev = sh('losetup', args).trim();
	if (!dev.startsWith('/dev/loop')) throw new Error(`losetup gave ${JSON.stringify(dev)}`);
	loops.add(dev);
	partxUpdate(dev);
	return dev;
}

export function detachLoop(dev: string): void {
	exec('partx', ['-d', dev]);
	const r = exec('losetup', ['-d', dev]);
	loops.delete(dev);
	if (r.status !== 0) throw new Error(`losetup -d ${dev}: ${r.stderr.trim()}`);
}

export async function withLoop<T>(file: string, fn: (dev: string) => T | Promise<T>, opts: { readOnly?: boolean } = {}): Promise<T> {
	const dev = attachLoop(file, opts);
	try {
		return await fn(dev);
	} finally {
		detachLoop(dev);
	}
}

/** /dev/loop3 + 2 -> /dev/loop3p2 */
export function partNode(dev: string, n: number): string {
	return `${dev}p${n}`;
}

// ------------------------------------------------------------ partition tables

export interface SfdiskPartition {
	node: string;
	start: number;
	size: number;
	type: string;
	uuid?: string;
	name?: string;
}

export interface SfdiskTable {
	label: string;
	id: string;
	device: string;
	unit: string;
	firstlba?: number;
	lastlba?: number;
	sectorsize?: number;
	partitions: SfdiskPartition[];
}

export function sfdiskJson(devOrFile: string): SfdiskTable {
	const j = JSON.parse(sh('sfdisk', ['--json', devOrFile])) as { partitiontable: SfdiskTable };
	return j.partitiontable;
}

/** 1-based partition number of the partition whose GPT name is `name`. */
export function partNumberByName(table: SfdiskTable, name: string): number {
	const i = table.partitions.findIndex((p) => p.name === name);
	if (i < 0) throw new Error(`no partition named ${name} in ${table.device}`);
	const m = /(\d+)$/.exec(table.partitions[i]!.node);
	if (!m) throw new Error(`cannot number ${table.partitions[i]!.node}`);
	return Number(m[1]);
}

export function deviceSize(dev: string): number {
	return Number(sh('blockdev', ['--getsize64', dev]).trim());
}

// ------------------------------------------------------------ mounts

export function mount(dev: string, opts: { rw?: boolean } = {}): string {
	const dir = tmpDir('reimage-mnt-');
	// noload: a read-only ext4 mount must not replay a journal (keeps bytes identical).
	const o = opts.rw ? 'rw' : 'ro,noload';
	sh('mount', ['-o', o, dev, dir]);
	mounts.add(dir);
	return dir;
}

export function umount(dir: string): void {
	const r = exec('umount', [dir]);
	if (r.status !== 0) throw new Error(`umount ${dir}: ${r.stderr.trim()}`);
	mounts.delete(dir);
	rmTmp(dir);
}

export async function withMount<T>(dev: string, fn: (dir: string) => T | Promise<T>, opts: { rw?: boolean } = {}): Promise<T> {
	const dir = mount(dev, opts);
	try {
		return await fn(dir);
	} finally {
		umount(dir);
	}
}

// ------------------------------------------------------------ metadata

/** Value of one extended attribute, or null when absent. */
export function getXattr(file: string, name: string): Buffer | null {
	const r = spawnSync('getfattr', ['--absolute-names', '--no-dereference', '--only-values', '-n', name, file]);
	if (r.status !== 0) return null;
	return r.stdout;
}

/** `getfacl -n` body lines (numeric ids), without comments. */
export function getAcl(file: string): string[] {
	return sh('getfacl', ['-n', '--absolute-names', '--omit-header', file])
		.split('\n')
		.map((l) => l.trim())
		.filter((l) => l && !l.startsWith('#'));
}

export function getCap(file: string): string {
	return sh('getcap', [file]).trim();
}

export function isRoot(): boolean {
	return typeof process.getuid === 'function' && process.getuid() === 0;
}
