// The VM tier: a real Debian kernel and a real dracut-built reimage initrd,
// booted in QEMU (TCG: KVM guests hang on this kind of machine) against disk
// images built on the host, then inspected on the host.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, fixtures } from './fixtures.ts';
import { BIN, pack } from './reimage.ts';
import { copySparse, exec, sh, tmpDir } from './sys.ts';
import { qemuArgs, type Drive } from '../../src/vmtest/qemu.ts';

export function kernel(): { vmlinuz: string; kver: string } {
	const k = fs.readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).sort().pop();
	if (!k) throw new Error('no /boot/vmlinuz-*: install linux-image-amd64 (make deps does)');
	return { vmlinuz: `/boot/${k}`, kver: k.slice('vmlinuz-'.length) };
}

export type Generator = 'dracut' | 'initramfs-tools';

// initrd: built once per generator + binary + module + glue content, cached under /tmp.
export function initrd(configDir?: string, generator: Generator = 'dracut'): string {
	const h = createHash('sha256').update(generator);
	const inputs = [
		BIN,
		...['module-setup.sh', 'reimage.service', 'reimage-hook.sh'].map((x) => path.join(REPO, 'dracut-module/50reimage', x)),
		...['reimage-entry.sh', 'initramfs-tools/hooks/reimage', 'initramfs-tools/scripts/init-premount/reimage'].map((x) => path.join(REPO, 'initramfs', x)),
	];
	for (const f of inputs) h.update(fs.readFileSync(f));
	if (configDir) for (const f of fs.readdirSync(configDir).sort()) h.update(f).update(fs.readFileSync(path.join(configDir, f)));
	const out = `/tmp/reimage-initrd-${h.digest('hex').slice(0, 16)}.img`;
	if (!fs.existsSync(out)) {
		const args = ['initrd', '--out', `${out}.tmp`, '--kver', kernel().kver, '--generator', generator, ...(configDir ? ['--config', configDir] : [])];
		sh(BIN, args);
		fs.renameSync(`${out}.tmp`, out);
	}
	return out;
}

// An ext4 file system holding DIR's contents, as a partition appended to IMG (grown by MiB).
export function appendPartition(img: string, label: string, contentDir: string, mib: number): void {
	const size = fs.statSync(img).size;
	fs.truncateSync(img, size + (mib + 2) * 2 ** 20);
	sh('sfdisk', ['-q', '--relocate', 'gpt-bak-std', img]);
	sh('sfdisk', ['-q', '--append', img], { input: `size=${mib}M,type=L,name=${label}\n` });
	const t = JSON.parse(sh('sfdisk', ['--json', img])) as { partitiontable: { partitions: { start: number }[] } };
	const start = t.partitiontable.partitions.at(-1)!.start;
	sh('mkfs.ext4', ['-q', '-L', label, '-d', contentDir, '-E', `offset=${start * 512}`, img, `${mib}M`]);
}

// stick: a GPT disk image with one ext4 partition labelled LABEL holding DIR.
export function stick(label: string, contentDir: string): string {
	const img = path.join(tmpDir('reimage-stick-'), 'stick.img');
	fs.writeFileSync(img, '');
	fs.truncateSync(img, 1 * 2 ** 20);
	sh('sfdisk', ['-q', img], { input: 'label: gpt\n' });
	appendPartition(img, label, contentDir, 64);
	return img;
}

// bundleTree: a directory with `bundle/` (a packed new.img), ready to become a file system.
export function bundleTree(edit?: (bundleDir: string) => void): string {
	const b = pack('zstd', { retain: fixtures().list });
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

export type Boot = { status: number | null; serial: string };

// bootVm: run the VM until it powers off or reboots (-no-reboot makes QEMU exit);
// the timeout is a hang guard, never an assertion.
export function bootVm(append: string, drives: Drive[], opts: { memMiB?: number; configDir?: string; generator?: Generator } = {}): Boot {
	const log = path.join(tmpDir('reimage-serial-'), 'serial.log');
	const args = qemuArgs({ kernel: kernel().vmlinuz, initrd: initrd(opts.configDir, opts.generator), append, drives, serialLog: log, ...(opts.memMiB ? { memMiB: opts.memMiB } : {}) });
	const r = exec('qemu-system-x86_64', args, { killAfterMs: 15 * 60 * 1000 });
	const serial = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
	if (r.status !== 0) throw new Error(`qemu exited ${r.status ?? r.signal}: ${r.stderr}\n--- serial ---\n${serial.slice(-4000)}`);
	return { status: r.status, serial };
}

export const sha256File = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

export { REPO };
