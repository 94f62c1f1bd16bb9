// Running the built binary (build/reimage) and packing bundles from the fixtures.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, fixtures } from './fixtures.ts';
import { attachLoop, copySparse, describe, detachLoop, exec, makeBlank, mount, partNode, sh, tmpDir, umount } from './sys.ts';
import type { ExecOptions, Result } from './sys.ts';

export const BIN = process.env['REIMAGE_BIN'] ?? path.join(REPO, 'build', 'reimage');

export type Codec = 'zstd' | 'gzip' | 'xz' | 'bzip2' | 'none';
export const CODECS: readonly Codec[] = ['zstd', 'gzip', 'xz', 'bzip2', 'none'];

/** Where the new image's partitions mount (matches the fixtures' fstab). */
export const MOUNTS = ['PARTLABEL=root:/', 'PARTLABEL=data:/kiosk'];

export function requireBin(): void {
	if (!fs.existsSync(BIN)) throw new Error(`${BIN} does not exist: run \`make bin\` first`);
}

/** Run reimage; stdin is /dev/null unless `input` is given. */
export function reimage(args: readonly string[], opts: ExecOptions = {}): Result {
	requireBin();
	return exec(BIN, args, opts);
}

export interface Manifest {
	format: string;
	image: { file: string; codec: string; size: number; sha256: string };
	raw: { size: number; sha256: string };
	table: unknown;
	mounts: Array<{ path: string; [k: string]: unknown }>;
	[k: string]: unknown;
}

export function readManifest(bundleDir: string): Manifest {
	return JSON.parse(fs.readFileSync(path.join(bundleDir, 'manifest.json'), 'utf8')) as Manifest;
}

export function writeManifest(bundleDir: string, m: Manifest): void {
	fs.writeFileSync(path.join(bundleDir, 'manifest.json'), JSON.stringify(m, null, 2) + '\n');
}

export interface PackOptions {
	retain?: string;
	mounts?: readonly string[];
	/** A private key (reimage keygen) to sign the bundle with. */
	sign?: string;
	/** Also write a chunk index and store (pack --chunks). */
	chunks?: boolean;
	/** With chunks: a delta file for each of these earlier bundles (pack --delta-from). */
	deltaFrom?: readonly string[];
}

/** Pack new.img into a fresh directory; throws (with reimage's output) on failure. */
export function pack(codec: Codec, opts: PackOptions = {}): string {
	const out = path.join(tmpDir('reimage-bundle-'), 'bundle');
	const args = ['pack', fixtures().newImg, '--out', out, '--codec', codec];
	if (opts.retain) args.push('--retain', opts.retain);
	if (opts.sign) args.push('--sign', opts.sign);
	if (opts.chunks) args.push('--chunks');
	for (const d of opts.deltaFrom ?? []) args.push('--delta-from', d);
	for (const m of opts.mounts ?? MOUNTS) args.push('--mount', m);
	const r = reimage(args);
	if (r.status !== 0) throw new Error(`reimage ${args.join(' ')}: ${describe(r)}`);
	return out;
}

const bundles = new Map<Codec, string>();

/** A packed bundle of new.img, shared by the whole test process: never modify it. */
export function sharedBundle(codec: Codec): string {
	let b = bundles.get(codec);
	if (!b) {
		b = pack(codec);
		bundles.set(codec, b);
	}
	return b;
}

/**
 * The bundle's own files copied from SRC to DST, without the retained sets that
 * earlier runs saved in it (the bundle directory is a keep place: a failed run
 * of another test leaves its set there, and a copy would carry it along).
 */
export function copyBundleFiles(src: string, dst: string): void {
	sh('cp', ['-a', src, dst]);
	fs.rmSync(path.join(dst, 'reimage-retained'), { recursive: true, force: true });
	fs.rmSync(path.join(dst, 'reimage-outbox'), { recursive: true, force: true });
}

/** A private, modifiable copy of a shared bundle. */
export function copyBundle(codec: Codec): string {
	const dst = path.join(tmpDir('reimage-bundle-copy-'), 'bundle');
	copyBundleFiles(sharedBundle(codec), dst);
	return dst;
}

/**
 * Run reimage with ARGS; as soon as its log matches WHEN, call ACT (a fault
 * injected at that moment, given the child's pid). What ACT returns is called
 * when reimage has ended.
 */
export async function runActing(
	args: string[],
	when: RegExp,
	act: (pid: number, log: () => string) => () => void,
	env: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number | null; stdout: string; stderr: string; acted: boolean }> {
	requireBin();
	const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
	let stderr = '';
	let stdout = '';
	let undo: (() => void) | undefined;
	child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
	child.stderr.on('data', (b: Buffer) => {
		stderr += b.toString();
		if (!undo && when.test(stderr)) undo = act(child.pid ?? 0, () => stderr);
	});
	const status = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
	undo?.();
	return { status, stdout, stderr, acted: undo !== undefined };
}

export const RUNDIR = process.env['REIMAGE_RUNDIR'] || '/run/reimage';
const runMounts = () =>
	new Set(
		fs
			.readFileSync('/proc/self/mounts', 'utf8')
			.split('\n')
			.map((l) => l.split(' ')[1] ?? '')
			.filter((m) => m.startsWith(`${RUNDIR}/`)),
	);
const runEntries = () => new Set(fs.existsSync(RUNDIR) ? fs.readdirSync(RUNDIR).map((e) => path.join(RUNDIR, e)) : []);

/** What is under the run directory now (mounts, entries): what a killed run leaves is told apart from it. */
export const runState = () => new Set([...runMounts(), ...runEntries()]);

/**
 * What a killed run left under the run directory since BEFORE (its RAM stage
 * and bundle mounted, its locks) unmounted and removed, so the next run starts
 * as after a reboot. The killed process may still be going away: its mounts
 * are busy for a moment, so each unmount is tried again (bounded).
 */
export function dropLeftBy(before: Set<string>): void {
	const left = [...runMounts()].filter((x) => !before.has(x)).reverse();
	for (const m of left) {
		for (let i = 0; ; i++) {
			try {
				sh('umount', [m]);
				break;
			} catch (e) {
				if (i >= 30) throw e;
				Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
			}
		}
	}
	for (const e of [...runEntries()].filter((x) => !before.has(x) && /\/lock-/.test(x))) fs.rmSync(e, { force: true });
	// Only when nothing is mounted below any more.
	for (const m of left)
		for (let d = m; d !== RUNDIR && d.startsWith(`${RUNDIR}/`); d = path.dirname(d)) fs.rmSync(d, { recursive: true, force: true });
}

/** The run ARGS SIGKILLed (a power cut, as far as the run can tell) when its log matches WHEN; what it left is then dropped (dropLeftBy). */
export async function killedAt(args: string[], when: RegExp, env: NodeJS.ProcessEnv = process.env) {
	const before = runState();
	return runActing(
		args,
		when,
		(pid) => {
			process.kill(pid, 'SIGKILL');
			return () => dropLeftBy(before);
		},
		env,
	);
}

/** What frozenBundle or frozenDisk made: PATH (the bundle directory, the disk image) on a frozen file system of its own. */
export type Frozen = { path: string; thaw: () => void; release: () => void };

// Frozen file systems are thawed however the test process ends, before sys.ts
// unmounts: whatever waits on one (a reimage run, an unmount) cannot even be killed.
const frozenMounts = new Set<string>();
process.prependListener('exit', () => {
	for (const m of frozenMounts) exec('fsfreeze', ['-u', m]);
});

// How long a file system stays frozen at most: a hang guard, never an assertion.
const FROZEN_GUARD_MS = 5 * 60_000;

/**
 * PUT's copy on a file system of its own (ext4 on a loop device, BYTES large
 * plus room), then frozen (fsfreeze): what is on it reads as usual, but the
 * first write to it waits until `thaw`. `release` thaws, unmounts and
 * detaches; it throws when the hang guard had to thaw (the run waited on the
 * file system for minutes: it wrote there before the log line the test acts on).
 */
function onFrozenFs(bytes: number, put: (mnt: string) => string): Frozen {
	const img = path.join(tmpDir('reimage-frozen-'), 'fs.img');
	makeBlank(img, bytes + 64 * 2 ** 20);
	sh('mkfs.ext4', ['-q', img]);
	const dev = attachLoop(img);
	const mnt = mount(dev, { rw: true });
	const p = put(mnt);
	sh('fsfreeze', ['-f', mnt]);
	frozenMounts.add(mnt);
	const thaw = () => {
		if (frozenMounts.delete(mnt)) sh('fsfreeze', ['-u', mnt]);
	};
	let guarded = false;
	const guard = setTimeout(() => {
		guarded = frozenMounts.has(mnt);
		thaw();
	}, FROZEN_GUARD_MS).unref();
	return {
		path: p,
		thaw,
		release: () => {
			clearTimeout(guard);
			thaw();
			umount(mnt);
			detachLoop(dev);
			if (guarded)
				throw new Error(`${p} stayed frozen for ${FROZEN_GUARD_MS / 1000} s: the run wrote there before the log line the test acts on`);
		},
	};
}

/**
 * A copy of BUNDLE on a frozen medium: the first thing a run with a retention
 * list writes there is the retained set (after the capture, before the point
 * of no return), and that waits until `thaw`. A fault injected at an earlier
 * line of the log therefore lands before the point of no return, however late
 * this process sees that line.
 */
export const frozenBundle = (bundle: string): Frozen =>
	onFrozenFs(0, (mnt) => {
		const dir = path.join(mnt, 'bundle');
		copyBundleFiles(bundle, dir);
		return dir;
	});

/**
 * The disk image FILE copied onto a frozen medium (attach the copy as usual,
 * and detach it before `release`): a run reads the disk as usual, but its
 * first write, just after the point of no return, waits until `thaw`. A fault
 * injected at the point of no return therefore lands before anything is
 * written, however late this process sees that line.
 */
export const frozenDisk = (file: string): Frozen =>
	onFrozenFs(fs.statSync(file).size, (mnt) => {
		const copy = path.join(mnt, 'disk.img');
		copySparse(file, copy);
		return copy;
	});

/** The run ARGS sent SIGTERM when its log matches WHEN; FROZEN (frozenBundle, frozenDisk) is thawed once the run has taken the signal. */
export async function sigtermAt(args: string[], when: RegExp, frozen?: Frozen) {
	return runActing(args, when, (pid, log) => {
		process.kill(pid, 'SIGTERM');
		const watch = setInterval(() => /SIGTERM received/.test(log()) && frozen?.thaw(), 10);
		return () => clearInterval(watch);
	});
}

/**
 * Partition 2 of DEV opened by this process when the log of the run ARGS
 * matches WHEN, closed once the log matches RELEASE (or when reimage ends).
 * The old table's partition 2 starts where the new one's does not, so the
 * kernel cannot update it while it is open: a reread after the write fails
 * with EBUSY. FROZEN (the run's bundle or DEV's disk, frozenBundle or
 * frozenDisk) is thawed once the partition is open, so it is open before the
 * run can get past the next write there.
 */
export function holdingPart2(args: string[], dev: string, frozen: Frozen, when: RegExp, releaseOn?: RegExp) {
	return runActing(args, when, (_pid, log) => {
		let fd: number | undefined = fs.openSync(partNode(dev, 2), 'r');
		frozen.thaw();
		const release = () => {
			clearInterval(watch);
			if (fd !== undefined) fs.closeSync(fd);
			fd = undefined;
		};
		const watch = setInterval(() => releaseOn?.test(log()) && release(), 50);
		return release;
	});
}

/** A copy of the zstd bundle whose first range checksum is wrong, the map's own checksum and the manifest updated to match. */
export function tamperedRange(): string {
	const b = copyBundle('zstd');
	const file = path.join(b, 'image.bmap');
	let text = fs.readFileSync(file, 'utf8');
	text = text.replace(/chksum="([0-9a-f])/, (_, c: string) => `chksum="${c === '0' ? '1' : '0'}`);
	const own = /<BmapFileChecksum> ([0-9a-f]{64}) /.exec(text)![1]!;
	const zeroed = text.replace(own, '0'.repeat(64));
	text = zeroed.replace('0'.repeat(64), createHash('sha256').update(zeroed).digest('hex'));
	fs.writeFileSync(file, text);
	const m = readManifest(b);
	writeManifest(b, { ...m, bmap: { file: 'image.bmap', sha256: createHash('sha256').update(text).digest('hex') } });
	return b;
}
