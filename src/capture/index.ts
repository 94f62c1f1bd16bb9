// `reimage capture`: a reference disk (not mounted) into a signed,
// block-mapped factory bundle of everything but its kept partitions, with the
// disk's layout fingerprint in the signed manifest. With --recovery the bundle
// goes onto the disk's own recovery partition (capture/recovery.ts) with the
// reimage kernel and initrd, and the persistent "Restore factory state" boot
// entry is installed into the captured system (capture/install.ts). Every
// refusal comes before the first byte is written to the disk: the image is
// copied, changed and packed in a work directory, and the recovery partition's
// room checked against the finished bundle.
import { cp, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entrySpec } from '../arm/index.ts';
import { readTable, mountsFromFstab } from '../bundle/layout.ts';
import type { CodecName, Manifest } from '../bundle/manifest.ts';
import { packRaw, refuseOut } from '../bundle/pack.ts';
import { ReimageError, targetError, usageError } from '../errors.ts';
import { layoutOf } from '../target/layout.ts';
import { resolveKept } from '../target/kept.ts';
import { parseSelector } from '../bundle/keepspec.ts';
import { holders, inspect, mountsOf } from '../target/sysfs.ts';
import { blkidProbe, deletePartitions, mkfsExt4, mount, sfdiskJson, syncAll, umount } from '../system/tools.ts';
import { createCleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';
import { copyDisk, writeBack, type Range } from './copy.ts';
import { installEntry } from './install.ts';
import { BOOT_DIR, BUNDLE_DIR, bytesUnder, checkRoom, findRecovery, RECOVERY_LABEL } from './recovery.ts';

export type CaptureOptions = {
  disk: string;
  key: string;
  keep: readonly string[];
  out?: string;
  recovery: boolean;
  kernel?: string;
  initrd?: string;
  config?: string;
  retain?: string;
  codec: CodecName;
};

export type Captured = { manifest: Manifest; where: string; kept: number[]; loaders: string[]; written: number };

const readable = async (what: string, f: string | undefined) => {
  if (f === undefined) return;
  if (!(await stat(f).catch(() => undefined))?.isFile()) throw usageError(`${what} ${f} is not a readable file: check the path`);
};

// capture: the factory bundle of the disk O.disk, into O.out or its recovery partition.
export async function capture(o: CaptureOptions, log: Log): Promise<Captured> {
  if (process.getuid?.() !== 0) throw new ReimageError('environment', 'reimage capture needs root (it reads the whole disk and mounts file systems): run it as root');
  if ((o.out === undefined) === !o.recovery) throw usageError('give exactly one of --out DIR and --recovery: where the factory bundle goes');
  if (o.recovery && (!o.kernel || !o.initrd)) throw usageError('--recovery needs --kernel FILE and --initrd FILE: the reimage kernel and initrd the "Restore factory state" entry boots');
  await readable('--key', o.key);
  await readable('--kernel', o.kernel);
  await readable('--initrd', o.initrd);
  await readable('--retain', o.retain);
  const d = await inspect(o.disk);
  if (!d) throw targetError(`reference disk ${o.disk} is not a block device: give a whole disk such as /dev/sda`);
  if (d.isPartition) throw targetError(`reference disk ${o.disk} is the partition ${d.name}, not a whole disk: give the disk it belongs to`);
  const busy = [...(await mountsOf(d)), ...(await holders(d))];
  if (busy.length)
    throw targetError(`reference disk ${d.node} is in use (${busy.join('; ')}): capture reads a disk nothing has mounted; unmount it, or capture from the reimage initrd or another system`, { busy });
  if (o.out) await refuseOut(o.out);
  const t = await sfdiskJson(d.node);
  if (!t) throw targetError(`reference disk ${d.node} has no partition table: capture a partitioned disk (GPT or MBR)`);
  const rec = o.recovery ? findRecovery(d.node, t) : undefined;
  // The kept partitions, by the run's own selectors (target/kept.ts); the recovery partition always.
  const selectors = o.keep.map((s) => parseSelector(s, `--keep ${s}`));
  const keptParts = resolveKept(t, [...selectors, ...(rec?.uuid ? [parseSelector(`PARTUUID=${rec.uuid}`, 'the recovery partition')] : [])], d.node);
  const kept = new Set(keptParts.map((k) => k.number));
  const layout = await layoutOf(d, kept);
  const table = await log.step('read the partition table and file systems', () => readTable(d.node));
  const plan = (await log.step("read the system's /etc/fstab", () => mountsFromFstab(d.node, table))).filter((m) => !kept.has(m.partition));
  if (!plan.some((m) => m.path === '/')) throw usageError(`the root file system of ${d.node} is on a kept partition: keep data partitions, not the system`);
  const ss = d.sectorSize;
  const rangeOf = (n: number): Range => {
    const p = table.partitions.find((x) => x.number === n)!;
    return { start: p.start * ss, end: (p.start + p.size) * ss };
  };
  const cleanup = createCleanup(log);
  try {
    if (o.out) await mkdir(o.out, { recursive: true });
    const work = await mkdtemp(join(o.out ?? tmpdir(), '.reimage-capture-'));
    cleanup.push(`remove ${work}`, () => rm(work, { recursive: true, force: true }));
    const raw = join(work, 'disk.raw');
    const { copied } = await log.step(`copy ${d.node} without the kept partitions ${[...kept].sort((a, b) => a - b).join(', ') || '(none)'}`, () =>
      copyDisk(d.node, d.size, raw, [...kept].map(rangeOf), log),
    );
    log.info(`read ${copied} bytes of data from ${d.node}`);
    // The image's own table leaves the kept partitions out: a reset's new table carries them over from the disk, in place.
    if (kept.size)
      await deletePartitions(
        raw,
        [...kept].sort((a, b) => a - b),
      );
    let loaders: string[] = [];
    let changed: number[] = [];
    let recFs: { uuid: string; fresh: boolean } | undefined;
    if (rec) {
      const probe = await blkidProbe(rec.node);
      if (probe.TYPE && probe.TYPE !== 'ext4')
        throw usageError(`recovery partition ${rec.node} holds ${probe.TYPE}, not ext4: reformat it (mkfs.ext4 -L ${RECOVERY_LABEL} ${rec.node}) or leave it empty`);
      recFs = probe.UUID ? { uuid: probe.UUID, fresh: false } : { uuid: randomUUID(), fresh: true };
      // No words of this host's command line (/dev/null): the entry's console is the captured system's (install.ts).
      const spec = await entrySpec({
        bundle: `PARTUUID=${rec.uuid?.toLowerCase()}:/${BUNDLE_DIR}`,
        target: `partuuid:${rec.uuid?.toLowerCase()}`,
        cmdline: '/dev/null',
        ...(o.config ? { config: o.config } : {}),
      });
      const boot = { fsUuid: recFs.uuid, kernel: `/${BOOT_DIR}/vmlinuz`, initrd: `/${BOOT_DIR}/initrd.img` };
      const done = await log.step('install the "Restore factory state" entry into the image', () => installEntry(raw, table, plan, spec, boot, { kernel: o.kernel!, initrd: o.initrd! }, cleanup));
      loaders = done.loaders;
      changed = done.partitions;
    }
    const out = o.out ?? join(work, 'bundle');
    const manifest = await packRaw(
      {
        image: raw,
        out,
        codec: o.codec,
        mounts: [],
        mountPlan: plan,
        sign: o.key,
        layout,
        ...(keptParts.length ? { keep: keptParts.map((k) => `PARTUUID=${k.uuid.toLowerCase()}`) } : {}),
        ...(o.retain ? { retain: o.retain } : {}),
      },
      log,
    );
    if (!rec || !recFs) return { manifest, where: out, kept: [...kept], loaders, written: 0 };
    // Nothing has been written to the disk yet: the room check is the last refusal.
    const need = (await bytesUnder(out)) + (await stat(o.kernel!)).size + (await stat(o.initrd!)).size;
    const mnt = join(work, 'recovery');
    await mkdir(mnt);
    if (recFs.fresh) {
      const room = Math.floor(rec.size * ss * 0.9) - (16 << 20);
      if (room < need)
        throw targetError(
          `recovery partition ${rec.node} (${rec.size * ss} bytes, no file system yet) cannot hold the ${need}-byte factory image and boot files: nothing was written; make it larger, or capture with --out DIR`,
          { needed: need },
        );
      await mkfsExt4(rec.node, RECOVERY_LABEL, recFs.uuid);
    }
    // Read-only for the room check (no journal replay, no superblock update): a refusal leaves the disk byte-identical.
    await mount(rec.node, mnt, 'ext4', 'ro,noload,nosuid,nodev,noexec');
    const unmount = cleanup.push(`unmount ${mnt}`, () => umount(mnt));
    await checkRoom(mnt, rec.node, need);
    await mount(rec.node, mnt, 'ext4', 'remount,rw');
    await log.step(`write the factory bundle to ${rec.node}`, async () => {
      await rm(join(mnt, BUNDLE_DIR), { recursive: true, force: true });
      await rm(join(mnt, BOOT_DIR), { recursive: true, force: true });
      await mkdir(join(mnt, BOOT_DIR));
      await cp(o.kernel!, join(mnt, BOOT_DIR, 'vmlinuz'));
      await cp(o.initrd!, join(mnt, BOOT_DIR, 'initrd.img'));
      await cp(out, join(mnt, BUNDLE_DIR), { recursive: true });
      await syncAll();
    });
    await unmount();
    const written = await log.step('put the boot entry onto the reference disk', () => writeBack(raw, d.node, changed.map(rangeOf)));
    return { manifest, where: `${rec.node}:/${BUNDLE_DIR}`, kept: [...kept], loaders, written };
  } finally {
    await cleanup.runAll();
  }
}
