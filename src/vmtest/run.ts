// `reimage vm-test`: prove a bundle against a copy of a real disk image, with
// the real initrd flow, in QEMU — so an operator's CI can gate a release. The
// bundle goes on a virtual USB stick, the copy of the disk is the target
// (selected by serial); the run's verdict comes from the serial console and
// the report it left in the new system (read back without mounting). Then the
// result is booted alone (result-boot.ts) and must print the marker: the
// retained entries are checked inside the booted system by whatever prints
// the marker (the marker can name what it saw), not on the disk afterwards.
import { cp, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { armSpec, kernelArgs } from '../arm/entry.ts';
import { loadBundle } from '../bundle/read.ts';
import { ReimageError, usageError } from '../errors.ts';
import { peek } from '../bundle/peek.ts';
import { copySparse, mkfsExtFrom, qemuBoot, writeTable } from '../system/tools.ts';
import type { Log } from '../util/log.ts';
import { buildInitrd } from '../boot/initrd.ts';
import { qemuArgs } from './qemu.ts';
import { chooseAccel } from './accel.ts';
import { ovmf, type Firmware } from './firmware.ts';
import { bootReason, bootResult, DEFAULT_MARKER, type ResultBoot } from './result-boot.ts';

// boot: false skips booting the result (a disk with no boot loader of its own).
export type VmTestOptions = {
  disk: string;
  bundle: string;
  kernel?: string;
  initrd?: string;
  memMiB?: number;
  timeoutMin?: number;
  keep?: string;
  boot?: boolean;
  firmware?: Firmware;
  marker?: RegExp;
  bootTimeoutS?: number;
  sectorSize?: 512 | 4096;
};

// serialTail: the reimage boot's lines; boot: the result's boot (absent when the reimage failed or boot was off).
export type VmVerdict = { pass: boolean; reason: string; accel?: string; report?: unknown; serialTail: string[]; boot?: ResultBoot };

export const DEFAULT_BOOT_TIMEOUT_S = 600;

const TARGET_SERIAL = 'VMTEST-TARGET';
const STICK_LABEL = 'RIMGVMTEST';

async function newestKernel(): Promise<string> {
  const k = (await readdir('/boot').catch(() => [] as string[]))
    .filter((f) => f.startsWith('vmlinuz-'))
    .sort()
    .pop();
  if (!k) throw usageError('no kernel in /boot: install one (Debian: linux-image-amd64) or pass --kernel');
  return `/boot/${k}`;
}

// stickImage: a GPT disk with one ext4 partition holding bundle/.
async function stickImage(dir: string, bundleDir: string): Promise<string> {
  const tree = join(dir, 'stick-tree');
  await mkdir(join(tree, 'bundle'), { recursive: true });
  await cp(bundleDir, join(tree, 'bundle'), { recursive: true });
  const { manifest } = await loadBundle(bundleDir);
  const mib = Math.ceil(manifest.image.size / 2 ** 20) + 64;
  const img = join(dir, 'stick.img');
  await writeFile(img, '');
  await truncate(img, (mib + 2) * 2 ** 20);
  await writeTable(img, `label: gpt\nstart=2048,type=L,name=${STICK_LABEL}\n`);
  await mkfsExtFrom(img, STICK_LABEL, tree, 1048576, mib);
  return img;
}

// readReport: /var/log/reimage/report.json from the reimaged copy, at the
// place the bundle's own table says (the disk now holds exactly that table, in
// its own sector size: sfdisk would read a 4Kn file as 512-byte sectors). ext:
// debugfs, no root; XFS and btrfs (the subvolume found one level down): a
// read-only mount without log recovery (bundle/peek.ts).
async function readReport(disk: string, bundleDir: string): Promise<unknown> {
  const { manifest } = await loadBundle(bundleDir);
  const want = '/var/log/reimage/report.json';
  const m = [...manifest.mounts].filter((x) => want.startsWith(x.path === '/' ? '/' : `${x.path}/`)).sort((a, b) => b.path.length - a.path.length)[0];
  const ss = manifest.table.sectorSize;
  const part = manifest.table.partitions.find((p) => p.number === m?.partition);
  if (!m || !part) return undefined;
  // A root on a logical volume: one linear run of extents at a known offset in its partition.
  const lv = m.lv ? part.lvm?.lvs.find((l) => l.name === m.lv) : undefined;
  if (m.lv && !lv) return undefined;
  const at = lv
    ? { number: part.number, offset: part.start * ss + lv.offset, size: lv.size, fstype: lv.fs.type ?? m.fstype }
    : { number: part.number, offset: part.start * ss, size: part.size * ss, fstype: part.fs.type ?? m.fstype };
  const text = await peek(disk, at, m.path === '/' ? want : want.slice(m.path.length));
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

// ownInitrd: a throwaway initrd for the throwaway VM. It bakes allowUnsigned
// (the VM proves the flow; `reimage verify --trust` proves the signature), so
// the same bundle passes whether or not it is signed.
async function ownInitrd(work: string, kernel: string, log: Log): Promise<string> {
  const config = join(work, 'config');
  await mkdir(config, { recursive: true });
  await writeFile(join(config, 'config.json'), '{ "allowUnsigned": true }\n');
  return (await buildInitrd({ out: join(work, 'initrd.img'), kver: kernel.replace(/^.*vmlinuz-/, ''), config }, log)).out;
}

export async function vmTest(o: VmTestOptions, log: Log): Promise<VmVerdict> {
  if (!existsSync(o.disk)) throw usageError(`--disk ${o.disk} does not exist: give a raw disk image of the old system`);
  await loadBundle(o.bundle);
  const kernel = o.kernel ?? (await newestKernel());
  const work = o.keep ? resolve(o.keep) : await mkdtemp(join(tmpdir(), 'reimage-vmtest-'));
  await mkdir(work, { recursive: true });
  try {
    // OVMF is looked for before the long reimage boot, not after it.
    if (o.firmware === 'efi' && o.boot !== false) await ovmf(work);
    const { accel, why } = await chooseAccel(work);
    log.info(`QEMU accelerator: ${accel} (${why})`);
    const initrd = o.initrd ?? (await ownInitrd(work, kernel, log));
    const disk = join(work, 'disk.img');
    await log.step('copy the disk image', () => copySparse(o.disk, disk));
    const stick = await log.step('put the bundle on a virtual USB stick', () => stickImage(work, o.bundle));
    const serialLog = join(work, 'serial.log');
    // UEFI: the reimage runs under the same firmware and variable store the
    // result then boots with, so the boot entry the reimage writes (src/stages/efi.ts) is the one used.
    const fw = o.firmware === 'efi' ? await ovmf(work) : undefined;
    const args = qemuArgs({
      kernel,
      initrd,
      // What `reimage arm` writes for its armed entry (the console comes from qemuArgs, not the host).
      append: kernelArgs(await armSpec(`LABEL=${STICK_LABEL}:/bundle`, `serial:${TARGET_SERIAL}`, { kver: kernel.replace(/^.*vmlinuz-/, ''), cmdline: '/dev/null' }), 'auto'),
      drives: [
        { file: disk, serial: TARGET_SERIAL, ...(o.sectorSize ? { sectorSize: o.sectorSize } : {}) },
        { file: stick, serial: 'VMTEST-STICK', usb: true },
      ],
      serialLog,
      accel,
      ...(fw ? { ovmf: fw } : {}),
      ...(o.memMiB ? { memMiB: o.memMiB } : {}),
    });
    await log.step('boot the reimage initrd in QEMU', () => qemuBoot(args, (o.timeoutMin ?? 30) * 60_000).catch((e: Error) => log.warn(e.message)));
    const serial = await readFile(serialLog, 'utf8').catch(() => '');
    const lines = serial
      .split(/\r?\n|\r/)
      .filter((l) => /reimage|point of no return|warning:|LVM:/.test(l))
      .slice(-15);
    const report = await readReport(disk, o.bundle).catch(() => undefined);
    const done = /reimage: done; rebooting into the new system/.test(serial);
    const outcome = (report as { outcome?: string } | undefined)?.outcome;
    const pass = done && outcome === 'success';
    // The binary's own one-line reason, else the glue's summary.
    const failLine = lines.find((l) => /reimage failed: /.test(l))?.replace(/^.*reimage failed: /, '') ?? [...lines].reverse().find((l) => /failed|FAILED/.test(l));
    const reason = pass ? 'the initrd flow reimaged the disk and the report says success' : (failLine ?? (serial ? 'the VM stopped without finishing the reimage' : 'the VM produced no output'));
    const reimaged = { pass, reason, accel, ...(report ? { report } : {}), serialTail: lines };
    if (!pass || o.boot === false) return reimaged;
    const timeoutS = o.bootTimeoutS ?? DEFAULT_BOOT_TIMEOUT_S;
    const boot = await log.step(`boot the reimaged disk (${o.firmware ?? 'bios'}, ${accel})`, () =>
      bootResult({
        disk,
        work,
        firmware: o.firmware ?? 'bios',
        accel,
        marker: o.marker ?? new RegExp(DEFAULT_MARKER),
        timeoutS,
        ...(fw ? { ovmf: fw } : {}),
        ...(o.sectorSize ? { sectorSize: o.sectorSize } : {}),
        ...(o.memMiB ? { memMiB: o.memMiB } : {}),
      }),
    );
    return { ...reimaged, pass: boot.outcome === 'reached', reason: bootReason(boot, timeoutS), boot };
  } finally {
    if (!o.keep) await rm(work, { recursive: true, force: true });
  }
}

export const vmTestError = (reason: string) => new ReimageError('vmTest', `vm-test failed: ${reason}`);
