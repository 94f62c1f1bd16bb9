// The VM tier: a real Debian kernel and a real dracut-built reimage initrd,
// booted in QEMU (TCG: KVM guests hang on this kind of machine) against disk
// images built on the host, then inspected on the host.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, fixtures } from './fixtures.ts';
import { BIN, pack } from './reimage.ts';
import { attachLoop, copySparse, detachLoop, mount, partNode, sh, tmpDir, umount } from './sys.ts';
import { CONSOLE_ARGS, ipxeScript, qemuArgs, type Drive, type Ovmf, type Pxe } from '../../src/vmtest/qemu.ts';
import { entrySpec } from '../../src/arm/index.ts';
import { kernelArgs } from '../../src/arm/entry.ts';

export function kernel(): { vmlinuz: string; kver: string } {
	const k = fs
		.readdirSync('/boot')
		.filter((f) => f.startsWith('vmlinuz-'))
		.sort()
		.pop();
	if (!k) throw new Error('no /boot/vmlinuz-*: install linux-image-amd64 (make deps does)');
	return { vmlinuz: `/boot/${k}`, kver: k.slice('vmlinuz-'.length) };
}

// armedArgs: the kernel arguments `reimage arm` writes for its entry, from the
// same code (src/arm/index.ts entrySpec): a VM boots what an armed machine
// boots. The host's own console settings are left out (qemuArgs sets ttyS0).
export async function armedArgs(mode: 'auto' | 'interactive', bundle: string, target: string, configDir?: string): Promise<string> {
	return kernelArgs(
		await entrySpec({ bundle, target, kver: kernel().kver, cmdline: '/dev/null', ...(configDir ? { config: configDir } : {}) }),
		mode,
	);
}

export type Generator = 'dracut' | 'initramfs-tools';

// initrd: built once per generator + binary + module + glue content, cached under /tmp.
export type InitrdSpec = { configDir?: string; generator?: Generator; noSystemd?: boolean; dracutAdd?: readonly string[] };

export function initrd(spec: InitrdSpec = {}): string {
	const { configDir = vmConfig(), generator = 'dracut', noSystemd = false, dracutAdd = [] } = spec;
	const h = createHash('sha256')
		.update(generator)
		.update(noSystemd ? ' no-systemd' : '')
		.update(dracutAdd.map((m) => ` add ${m}`).join(''));
	const inputs = [
		BIN,
		...['module-setup.sh', 'reimage.service', 'reimage-hook.sh', 'reimage-cmdline.sh', 'reimage-lvm.sh'].map((x) =>
			path.join(REPO, 'dracut-module/50reimage', x),
		),
		...['reimage-entry.sh', 'initramfs-tools/hooks/reimage', 'initramfs-tools/scripts/init-premount/reimage'].map((x) =>
			path.join(REPO, 'initramfs', x),
		),
	];
	for (const f of inputs) h.update(fs.readFileSync(f));
	for (const f of fs.readdirSync(configDir).sort()) h.update(f).update(fs.readFileSync(path.join(configDir, f)));
	const out = `/tmp/reimage-initrd-${h.digest('hex').slice(0, 16)}.img`;
	if (!fs.existsSync(out)) {
		const args = [
			'initrd',
			'--out',
			`${out}.${process.pid}.tmp`,
			'--kver',
			kernel().kver,
			'--generator',
			generator,
			'--config',
			configDir,
			...(noSystemd ? ['--no-systemd'] : []),
			...dracutAdd.flatMap((m) => ['--add', m]),
		];
		// (Each process builds under its own name: VM test files run side by side.)
		sh(BIN, args);
		fs.renameSync(`${out}.${process.pid}.tmp`, out);
	}
	return out;
}

// vmKey: the test fleet's signing key, made once and kept under /tmp so the
// initrds that bake its public half stay cached between runs.
export function vmKey(): { key: string; pub: string } {
	const dir = '/tmp/reimage-vm-key';
	const prefix = `${dir}/fleet`;
	if (!fs.existsSync(`${prefix}.pub`)) {
		// Made aside and renamed into place whole: a process running beside this one takes whichever landed first.
		const aside = fs.mkdtempSync(`${dir}.new-`);
		sh(BIN, ['keygen', '--out', `${aside}/fleet`]);
		try {
			fs.renameSync(aside, dir);
		} catch {
			fs.rmSync(aside, { recursive: true, force: true });
		}
	}
	return { key: `${prefix}.key`, pub: `${prefix}.pub` };
}

// vmConfig: an initrd config directory: CONFIG as config.json, and the test
// key baked in, so the initrd accepts only bundles signed by it (bundleTree's).
export function vmConfig(config: object = {}): string {
	const dir = tmpDir('reimage-vmconfig-');
	fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(config)}\n`);
	fs.copyFileSync(vmKey().pub, path.join(dir, 'fleet.pub'));
	return dir;
}

// An ext4 file system holding DIR's contents, as a partition appended to IMG
// (grown by MiB); AFTERIMAGE: it starts 1 MiB past IMG's old end (a reimage
// with an image of that size must not overlap it).
export function appendPartition(img: string, label: string, contentDir: string, mib: number, afterImage = false): void {
	appendPart(img, label, mib, afterImage, 'L', (start) =>
		sh('mkfs.ext4', ['-q', '-L', label, '-d', contentDir, '-E', `offset=${start * 512}`, img, `${mib}M`]),
	);
}

// appendFat: an empty FAT file system as an EFI system partition (GPT name LABEL) appended to IMG.
export function appendFat(img: string, label: string, mib: number): void {
	appendPart(img, label, mib, false, 'U', (start) =>
		sh('mkfs.fat', ['-F', '16', '-n', label, '--offset', String(start), img, String(mib * 1024)]),
	);
}

function appendPart(img: string, label: string, mib: number, afterImage: boolean, type: string, mkfs: (start: number) => void): void {
	const size = fs.statSync(img).size;
	const gap = afterImage ? 2 : 0;
	fs.truncateSync(img, size + (mib + 2 + gap) * 2 ** 20);
	sh('sfdisk', ['-q', '--relocate', 'gpt-bak-std', img]);
	const at = afterImage ? `start=${(Math.ceil(size / 2 ** 20) + 1) * 2048},` : '';
	sh('sfdisk', ['-q', '--append', img], { input: `${at}size=${mib}M,type=${type},name=${label}\n` });
	const t = JSON.parse(sh('sfdisk', ['--json', img])) as { partitiontable: { partitions: { start: number }[] } };
	mkfs(t.partitiontable.partitions.at(-1)!.start);
}

// stick: a GPT disk image with one ext4 partition labelled LABEL holding DIR.
export function stick(label: string, contentDir: string, mib = 64): string {
	const img = path.join(tmpDir('reimage-stick-'), 'stick.img');
	fs.writeFileSync(img, '');
	fs.truncateSync(img, 1 * 2 ** 20);
	sh('sfdisk', ['-q', img], { input: 'label: gpt\n' });
	appendPartition(img, label, contentDir, mib);
	return img;
}

// bundleTree: a directory with `bundle/` (a packed new.img, signed by the test key
// unless SIGN is false), ready to become a file system.
export function bundleTree(
	edit?: (bundleDir: string) => void,
	codec: 'zstd' | 'none' = 'zstd',
	sign = true,
	chunks = false,
	deltaFrom: readonly string[] = [],
): string {
	const b = pack(codec, { retain: fixtures().list, ...(sign ? { sign: vmKey().key } : {}), chunks, deltaFrom });
	if (edit) edit(b);
	const root = tmpDir('reimage-bundlefs-');
	fs.cpSync(b, path.join(root, 'bundle'), { recursive: true });
	return root;
}

export function oldDiskCopy(): string {
	const f = path.join(tmpDir('reimage-vmdisk-'), 'disk.img');
	copySparse(fixtures().oldImg, f);
	return f;
}

// killed: QEMU was killed (`until` matched, or the hang guard); guarded: by the hang guard (GUARD_MS with no match).
export type Boot = { status: number | null; serial: string; killed: boolean; guarded: boolean };

// bootVm: run the VM until it powers off or reboots (-no-reboot makes QEMU exit).
export const bootVm = (append: string, drives: Drive[], opts: BootOptions = {}): Promise<Boot> =>
	bootUntil(append, drives, () => false, opts);

export const sha256File = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

export { REPO };

// answer: typed at the console once the serial log shows `cue` (a person at the keyboard).
// pxe: network-booted by QEMU's iPXE ROM; the kernel and initrd are placed in
// the web server's ROOT/pxe/ and loaded from it over HTTP (10.0.2.2:PORT).
export type BootOptions = InitrdSpec & {
	memMiB?: number;
	answer?: { cue: string; text: string; quietMs?: number };
	net?: boolean;
	pxe?: { root: string; port: number };
	// firmware: no -kernel/-initrd: the firmware boots the first drive (SeaBIOS, or OVMF with these flash images), as after a power cut.
	firmware?: { ovmf?: Ovmf };
};

// pxeBoot: the TFTP directory holding boot.ipxe, and the kernel and initrd linked into the web root.
export function pxeBoot(web: { root: string; port: number }, initrdFile: string, append: string): Pxe {
	const dir = path.join(web.root, 'pxe');
	fs.mkdirSync(dir, { recursive: true });
	for (const [name, from] of [
		['vmlinuz', kernel().vmlinuz],
		['initrd.img', initrdFile],
	] as const) {
		fs.rmSync(path.join(dir, name), { force: true });
		fs.symlinkSync(from, path.join(dir, name));
	}
	const tftp = tmpDir('reimage-tftp-');
	const base = `http://10.0.2.2:${web.port}/pxe`;
	fs.writeFileSync(path.join(tftp, 'boot.ipxe'), ipxeScript(`${base}/vmlinuz`, `${base}/initrd.img`, `${CONSOLE_ARGS} ${append}`));
	return { tftp, bootfile: 'boot.ipxe' };
}

// Under TCG a guest very rarely stalls in early kernel boot (seen once here,
// right after "Switched to clocksource hpet"). A boot whose serial log stops
// growing before userspace started has touched no disk and is retried once.
const STALL_MS = 180_000;
const RETYPE_MS = 30_000;
const GUARD_MS = 15 * 60 * 1000;
const userspace = (serial: string) => /Run \/init|systemd\[1\]|Begin: /.test(serial);

// cueRe: TEXT found in a serial log even where the log repeats one of its
// characters (seen twice: a prompt logged as 'Tyype "yes" to continue: ' was
// never answered, and the VM waited for the hang guard).
const cueRe = (text: string) => new RegExp([...text].map((c) => `(?:${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})+`).join(''));

// bootUntil: the VM is killed (a power cut) as soon as the serial log
// satisfies `until`; resolves with the log once QEMU is gone. The time bounds
// are hang guards, never assertions.
export async function bootUntil(
	append: string,
	drives: Drive[],
	until: (serial: string) => boolean,
	opts: BootOptions = {},
): Promise<Boot> {
	for (let attempt = 1; ; attempt++) {
		const r = await bootOnce(append, drives, until, opts);
		if (r !== 'stalled') return r;
		if (attempt === 2) throw new Error('the VM stalled before userspace twice');
	}
}

async function bootOnce(append: string, drives: Drive[], until: (serial: string) => boolean, opts: BootOptions): Promise<Boot | 'stalled'> {
	const dir = tmpDir('reimage-serial-');
	const log = path.join(dir, 'serial.log');
	const fifo = path.join(dir, 'console');
	const args = qemuArgs({
		...(opts.firmware
			? opts.firmware.ovmf
				? { ovmf: opts.firmware.ovmf }
				: {}
			: { kernel: kernel().vmlinuz, initrd: initrd(opts), append }),
		drives,
		serialLog: log,
		...(opts.memMiB ? { memMiB: opts.memMiB } : {}),
		...(opts.answer ? { serialPipe: fifo } : {}),
		...(opts.net ? { net: true } : {}),
		...(opts.pxe ? { pxe: pxeBoot(opts.pxe, initrd(opts), append) } : {}),
	});
	// The console's FIFOs, opened read-write (so neither open waits for QEMU, nor a read ends when it is gone):
	// what the guest prints is read and dropped (the log file has it); answers are written to the other.
	let keyboard: number | undefined;
	let drain: net.Socket | undefined;
	if (opts.answer) {
		for (const end of ['in', 'out']) sh('mkfifo', [`${fifo}.${end}`]);
		drain = new net.Socket({ fd: fs.openSync(`${fifo}.out`, 'r+'), readable: true, writable: false }).on('error', () => {}).resume();
		keyboard = fs.openSync(`${fifo}.in`, 'r+');
	}
	const cue = opts.answer ? cueRe(opts.answer.cue) : /$^/;
	// typed: when the answer was last typed, and the console's size then.
	let typed: { at: number; size: number; times: number } | undefined;
	const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
	let stderr = '';
	child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
	const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
	const read = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '');
	let killed = false;
	let stalled = false;
	let guarded = false;
	let last = { size: -1, at: Date.now() };
	const started = Date.now();
	for (;;) {
		const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]);
		if (done) break;
		const serial = read();
		if (serial.length !== last.size) last = { size: serial.length, at: Date.now() };
		// With quietMs, typed once the console has also been quiet that long after the cue: a shell
		// flushes what was typed before it set up its terminal (seen under load). Whatever reads it
		// (readline, a shell) echoes it: a console still silent RETYPE_MS later lost it, and it is
		// typed again, as a person would (a backstop: the losses seen were cues the log garbled, see cueRe).
		if (opts.answer && keyboard !== undefined && cue.test(serial)) {
			const first = !typed && Date.now() - last.at >= (opts.answer.quietMs ?? 0);
			const again = typed && typed.times < 5 && serial.length === typed.size && Date.now() - typed.at >= RETYPE_MS;
			if (first || again) {
				if (again)
					process.stderr.write(
						`vm: nothing echoed ${RETYPE_MS / 1000} s after ${JSON.stringify(opts.answer.text)} was typed; typing it again\n`,
					);
				fs.writeSync(keyboard, opts.answer.text);
				typed = { at: Date.now(), size: serial.length, times: (typed?.times ?? 0) + 1 };
			}
		}
		stalled = !userspace(serial) && Date.now() - last.at > STALL_MS;
		const matched = until(serial);
		guarded = !matched && !stalled && Date.now() - started > GUARD_MS;
		if (matched || stalled || guarded) {
			killed = true;
			child.kill('SIGKILL');
			break;
		}
	}
	const status = await exited;
	drain?.destroy();
	if (keyboard !== undefined) fs.closeSync(keyboard);
	if (stalled) return 'stalled';
	if (!killed && status !== 0) throw new Error(`qemu exited ${status}: ${stderr}\n--- serial ---\n${read().slice(-4000)}`);
	const serial = read();
	// A boot the hang guard ended is a post-mortem: its whole console is kept, and its tail is in the test's output.
	if (guarded) {
		const kept = path.join(os.tmpdir(), `reimage-guarded-${Date.now()}.log`);
		fs.writeFileSync(kept, serial);
		process.stderr.write(
			`vm: the hang guard ended a boot after ${GUARD_MS / 1000} s (console in ${kept}); its tail:\n${serial.slice(-3000)}\n`,
		);
	}
	return { status, serial, killed, guarded };
}

/** FN with the root and data file systems of disk image IMG mounted (read-only). */
export function inspectDisk<T>(img: string, fn: (root: string, data: string) => T): T {
	const dev = attachLoop(img);
	const mounts: string[] = [];
	try {
		const root = mount(partNode(dev, 1));
		mounts.push(root);
		const data = mount(partNode(dev, 2));
		mounts.push(data);
		return fn(root, data);
	} finally {
		for (const m of mounts.reverse()) umount(m);
		detachLoop(dev);
	}
}
