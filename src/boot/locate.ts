// Finding the bundle in the initramfs (rd.reimage.bundle=LABEL=REIMAGE:/bundle,
// UUID=, PARTLABEL=, PARTUUID= or a /dev/disk/by-* path, then the bundle
// directory or its manifest) and copying it into RAM, so the disk it came
// from can be the target: the source is unmounted before anything is written.
// Exactly one device may carry the location.
import { access, lstat, mkdir, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bundleError } from '../errors.ts';
import { Manifest } from '../bundle/manifest.ts';
import { blkidProbe, mount, umount } from '../system/tools.ts';
import { checkRam } from '../stages/budget.ts';
import { readOnlyOptions, UNTRUSTED } from '../stages/mounts.ts';
import { copyTicking } from '../util/copy.ts';
import { withProgress } from '../util/progress.ts';
import { resolveInRoot } from '../retention/inroot.ts';
import { inspect, type Disk } from '../target/sysfs.ts';
import { fromUtf8 } from '../util/bytes.ts';
import { twins, wholeDisks } from './select.ts';
import type { Cleanup } from '../util/cleanup.ts';
import { parseSpec } from '../util/fstab.ts';
import type { Log } from '../util/log.ts';

export type Location = { device: { kind: string; value: string } | { path: string }; path: string };

// udev links that name an identity, not a device: when two devices carry it,
// udev points the link at one of them. They are looked up like the spec.
const IDENTITY_LINKS = { 'by-label': 'LABEL', 'by-uuid': 'UUID', 'by-partlabel': 'PARTLABEL', 'by-partuuid': 'PARTUUID' } as const;

// unescapeUdev: udev writes a space in a link name as \x20, a slash as \x2f.
const unescapeUdev = (s: string) => s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

export function parseLocation(text: string): Location {
  const m = /^(.*?)(?::(\/.*))?$/.exec(text)!;
  const dev = m[1]!;
  const path = m[2] ?? '/';
  const link = /^\/dev\/disk\/(by-label|by-uuid|by-partlabel|by-partuuid)\/([^/]+)$/.exec(dev);
  if (link) return { device: { kind: IDENTITY_LINKS[link[1] as keyof typeof IDENTITY_LINKS], value: unescapeUdev(link[2]!) }, path };
  if (dev.startsWith('/dev/')) return { device: { path: dev }, path };
  const spec = parseSpec(dev);
  if (!spec) throw bundleError(`bundle location "${text}" is not understood: write LABEL=…:/dir, UUID=…:/dir, PARTLABEL=…, PARTUUID=… or /dev/disk/by-…/…:/dir`);
  return { device: spec, path };
}

const KEY = { LABEL: 'LABEL', UUID: 'UUID', PARTLABEL: 'PART_ENTRY_NAME', PARTUUID: 'PART_ENTRY_UUID' } as const;

// How the devices are listed and probed (tests give fakes).
export type Scan = { names: () => Promise<string[]>; probe: (node: string) => Promise<Record<string, string>> };
const system: Scan = {
  names: () => readdir('/sys/class/block').catch(() => [] as string[]),
  probe: (node) => blkidProbe(node).catch(() => ({}) as Record<string, string>),
};

// Floppy drives stall for seconds when probed; RAM disks are never a bundle
// medium; an unbound loop device has nothing to probe (a bound one may carry
// the bundle, and then counts like any other device).
const skip = async (name: string) =>
  /^(ram|zram|fd)/.test(name) ||
  (/^loop\d/.test(name) &&
    !(await access(`/sys/class/block/${name}/loop/backing_file`).then(
      () => true,
      () => false,
    )));

// matchingDevices: every device that carries the spec, each once (by kernel name).
export async function matchingDevices(spec: { kind: string; value: string }, scan: Scan = system): Promise<string[]> {
  const hits = new Set<string>();
  for (const name of (await scan.names()).sort()) {
    if (scan === system && (await skip(name))) continue;
    const got = (await scan.probe(`/dev/${name}`))[KEY[spec.kind as keyof typeof KEY]];
    if (got !== undefined && (spec.kind.endsWith('UUID') ? got.toLowerCase() === spec.value.toLowerCase() : got === spec.value)) hits.add(`/dev/${name}`);
  }
  return [...hits];
}

// findDevice: the one block device holding the bundle, waiting for it to
// appear. Two devices that carry the location are refused: which one's
// bundle would be used would depend on probe order.
export async function findDevice(loc: Location, log: Log, waitSeconds: number, scan: Scan = system): Promise<string> {
  for (let i = 0; ; i++) {
    if ('path' in loc.device) {
      const d = await inspect(loc.device.path);
      if (d !== undefined) {
        if (loc.device.path.startsWith('/dev/disk/by-id/')) await refuseTwins(loc.device.path, d);
        return loc.device.path;
      }
    } else {
      const { kind, value } = loc.device;
      const hits = await matchingDevices(loc.device, scan);
      if (hits.length > 1) {
        throw bundleError(
          `the bundle location ${kind}=${value} is carried by ${hits.length} devices (${hits.join(', ')}): only one may carry it; name one by UUID=… or PARTUUID=… (blkid shows them), or remove the other medium`,
          { devices: hits },
        );
      }
      if (hits.length === 1) return hits[0]!;
    }
    if (i >= waitSeconds) break;
    if (i % 10 === 0) log.info(`waiting for the bundle device (${JSON.stringify(loc.device)})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw bundleError(`the bundle device ${JSON.stringify(loc.device)} did not appear within ${waitSeconds} s: check rd.reimage.bundle= and that the medium is attached`);
}

// refuseTwins: a by-id link names a disk's identity (model, serial); when
// another disk has the same one (cloned USB sticks), udev's link may point at
// either, so the location is ambiguous.
async function refuseTwins(link: string, d: Disk): Promise<void> {
  const parent = d.isPartition ? await inspect(`/dev/${await parentDisk(d.node)}`) : d;
  if (!parent) return;
  const others = (await wholeDisks()).filter((x) => twins(x, parent));
  if (others.length) {
    throw bundleError(
      `the bundle location ${link} names disk ${parent.node} (serial ${parent.serial || '-'}), but ${others.map((x) => x.node).join(', ')} has the same identity, so the link may point at either: name the bundle by UUID=… or PARTUUID=… (blkid shows them), or remove the other medium`,
    );
  }
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
    const files = await bundleFiles(from);
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
    await log.step(`copy the bundle from ${source} into RAM (${bytes} bytes)`, () =>
      withProgress('copying the bundle', bytes, log, async (tick) => {
        for (const f of files) await copyTicking(join(from, f), join(dir, f), tick);
      }),
    );
    return { dir, source, ...(await parentDisk(source).then((d) => (d ? { disk: d } : {}))) };
  } finally {
    await undoSrc();
  }
}

// bundleFiles: what a bundle directory holds that the run reads: the
// manifest, its signatures and the files the manifest names (nothing else is
// copied, so nothing else can be read). The manifest is checked (signature,
// schema, hashes) on the copy; here it only says what to copy.
export async function bundleFiles(from: string): Promise<string[]> {
  const present = new Set(await readdir(from));
  const text = await readFile(join(from, 'manifest.json'), 'utf8').catch(() => undefined);
  let named: string[] = [];
  try {
    const m = Manifest.safeParse(JSON.parse(text ?? ''));
    if (m.success) named = [m.data.image.file, ...(m.data.bmap ? [m.data.bmap.file] : []), ...(m.data.retention ? [m.data.retention.file] : [])];
  } catch {
    // Not JSON: only the manifest is copied, and loading it says what is wrong.
  }
  return [...new Set(['manifest.json', 'manifest.json.sig', 'manifest.json.minisig', ...named])].filter((f) => present.has(f));
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
