// Finding the bundle's device in the initramfs (rd.reimage.bundle=LABEL=REIMAGE:/bundle,
// UUID=, PARTLABEL=, PARTUUID= or a /dev/disk/by-* path, then the bundle
// directory or its manifest). Exactly one device may carry the location.
// Mounting it and copying the bundle into RAM is the block-device source
// kind's (src/sources/device.ts); saving a failure log onto it is here.
import { access, mkdir, readdir, realpath, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bundleError } from '../errors.ts';
import { blkidProbe, mount, umount } from '../system/tools.ts';
import { UNTRUSTED } from '../util/mountopts.ts';
import { inspect, type Disk } from '../target/sysfs.ts';
import { twins, wholeDisks } from './select.ts';
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
// A partition of a loop device (loop3p2) counts when its loop device is bound.
const skip = async (name: string) =>
  /^(ram|zram|fd)/.test(name) ||
  (/^loop\d/.test(name) &&
    !(await access(`/sys/class/block/${name.replace(/^(loop\d+)p\d+$/, '$1')}/loop/backing_file`).then(
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
export async function parentDisk(node: string): Promise<string | undefined> {
  const d = await inspect(node);
  if (!d) return undefined;
  if (!d.isPartition) return d.name;
  return basename(dirname(await realpath(`/sys/dev/block/${d.dev}`)));
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
