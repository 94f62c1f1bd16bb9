// Finding the bundle in the initramfs (rd.reimage.bundle=LABEL=REIMAGE:/bundle,
// UUID=, PARTLABEL=, PARTUUID= or a /dev/disk/by-* path, then the bundle
// directory or its manifest) and copying it into RAM, so the disk it came
// from can be the target: the source is unmounted before anything is written.
import { copyFile, lstat, mkdir, readdir, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bundleError } from '../errors.ts';
import { blkidProbe, mount, umount } from '../system/tools.ts';
import { checkRam } from '../stages/budget.ts';
import { readOnlyOptions, UNTRUSTED } from '../stages/mounts.ts';
import { resolveInRoot } from '../retention/inroot.ts';
import { inspect } from '../target/sysfs.ts';
import { fromUtf8 } from '../util/bytes.ts';
import type { Cleanup } from '../util/cleanup.ts';
import { parseSpec } from '../util/fstab.ts';
import type { Log } from '../util/log.ts';

export type Location = { device: { kind: string; value: string } | { path: string }; path: string };

export function parseLocation(text: string): Location {
  const m = /^(.*?)(?::(\/.*))?$/.exec(text)!;
  const dev = m[1]!;
  const path = m[2] ?? '/';
  if (dev.startsWith('/dev/')) return { device: { path: dev }, path };
  const spec = parseSpec(dev);
  if (!spec) throw bundleError(`bundle location "${text}" is not understood: write LABEL=…:/dir, UUID=…:/dir, PARTLABEL=…, PARTUUID=… or /dev/disk/by-…/…:/dir`);
  return { device: spec, path };
}

const KEY = { LABEL: 'LABEL', UUID: 'UUID', PARTLABEL: 'PART_ENTRY_NAME', PARTUUID: 'PART_ENTRY_UUID' } as const;

// findDevice: the block device holding the bundle, waiting for it to appear.
async function findDevice(loc: Location, log: Log, waitSeconds: number): Promise<string> {
  for (let i = 0; ; i++) {
    if ('path' in loc.device) {
      if ((await inspect(loc.device.path)) !== undefined) return loc.device.path;
    } else {
      const { kind, value } = loc.device;
      for (const name of await readdir('/sys/class/block').catch(() => [] as string[])) {
        // Floppy drives stall for seconds when probed; loop/ram are never a bundle medium.
        if (/^(loop|ram|zram|fd)/.test(name)) continue;
        const p = await blkidProbe(`/dev/${name}`).catch(() => ({}) as Record<string, string>);
        const got = p[KEY[kind as keyof typeof KEY]];
        if (got !== undefined && (kind.endsWith('UUID') ? got.toLowerCase() === value.toLowerCase() : got === value)) return `/dev/${name}`;
      }
    }
    if (i >= waitSeconds) break;
    if (i % 10 === 0) log.info(`waiting for the bundle device (${JSON.stringify(loc.device)})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw bundleError(`the bundle device ${JSON.stringify(loc.device)} did not appear within ${waitSeconds} s: check rd.reimage.bundle= and that the medium is attached`);
}

// The disk a partition belongs to (its kernel name), for the "never the bundle disk" rule.
async function parentDisk(node: string): Promise<string | undefined> {
  const d = await inspect(node);
  if (!d) return undefined;
  if (!d.isPartition) return d.name;
  return basename(dirname(await realpath(`/sys/dev/block/${d.dev}`)));
}

export type Fetched = { dir: string; disk?: string; source: string };

// fetchBundle: mount the source read-only, copy the bundle into a tmpfs, unmount.
export async function fetchBundle(text: string, runBase: string, cleanup: Cleanup, log: Log, waitSeconds = 60): Promise<Fetched> {
  const loc = parseLocation(text);
  const source = await findDevice(loc, log, waitSeconds);
  const fs = (await blkidProbe(source)).TYPE;
  if (!fs) throw bundleError(`the bundle device ${source} has no file system reimage can mount`);
  const src = join(runBase, 'bundle-src');
  await mkdir(src, { recursive: true });
  await mount(source, src, fs, readOnlyOptions(fs));
  const undoSrc = cleanup.push(`umount ${src}`, () => umount(src));
  try {
    // The path resolves inside the medium as in a chroot (`..` and absolute
    // links stop at its root), and a bundle file that is a symlink is refused:
    // nothing outside the medium is ever read as the bundle.
    const where = Buffer.from(await resolveInRoot(src, fromUtf8(loc.path)), 'latin1').toString('utf8');
    const st = await stat(where).catch(() => undefined);
    if (!st) throw bundleError(`there is no ${loc.path} on the bundle device ${source}: check rd.reimage.bundle=`);
    const from = st.isDirectory() ? where : dirname(where);
    const files = (await readdir(from)).filter((f) => /^(manifest\.json(\.sig|\.minisig)?|image\.raw(\.[a-z0-9]+)?|retention\.list|.*\.bmap)$/.test(f));
    let bytes = 0;
    for (const f of files) {
      const fst = await lstat(join(from, f));
      if (!fst.isFile()) throw bundleError(`the bundle file ${f} on ${source} is ${fst.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: put the file itself into the bundle directory`);
      bytes += fst.size;
    }
    await checkRam(bytes);
    const dir = join(runBase, 'bundle');
    await mkdir(dir, { recursive: true });
    await mount('tmpfs', dir, 'tmpfs', `size=${bytes + (1 << 20)},mode=0700`);
    cleanup.push(`umount ${dir}`, () => umount(dir));
    await log.step(`copy the bundle from ${source} into RAM (${bytes} bytes)`, async () => {
      for (const f of files) await copyFile(join(from, f), join(dir, f));
    });
    return { dir, source, ...(await parentDisk(source).then((d) => (d ? { disk: d } : {}))) };
  } finally {
    await undoSrc();
  }
}

// saveLog: after a failure past the point of no return, write the log onto the
// bundle's medium (a USB stick, a second disk) so it survives the stop.
export async function saveLog(source: string, runBase: string, log: Log): Promise<void> {
  const dir = join(runBase, 'log-dst');
  try {
    const fs = (await blkidProbe(source)).TYPE;
    if (!fs) return;
    await mkdir(dir, { recursive: true });
    await mount(source, dir, fs, `rw,${UNTRUSTED}`);
    try {
      const name = `reimage-failed-${new Date().toISOString().replace(/[:.]/g, '-')}.log`;
      // 'wx': a name planted on the medium (a symlink included) is never followed.
      await writeFile(join(dir, name), log.lines().join('\n') + '\n', { flag: 'wx' });
      log.info(`the log was saved as ${name} on ${source}`);
    } finally {
      await umount(dir);
    }
  } catch (e) {
    log.warn(`could not save the log on ${source}: ${(e as Error).message}`);
  }
}
