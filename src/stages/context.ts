// What the stages share: the options, the log, the cleanup stack, and the
// facts each stage establishes for the next (bundle, disk, scan, capture...).
import type { Bundle } from '../bundle/read.ts';
import type { Unmapped } from '../bmap/format.ts';
import type { Archive, KeepPlace } from '../retention/archive.ts';
import type { Captured } from '../retention/capture.ts';
import type { IdMap } from '../retention/ids.ts';
import type { ListEntry } from '../retention/list.ts';
import type { EntryReport } from '../retention/restore.ts';
import type { Caps, Scan } from '../retention/scan.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Disk } from '../target/sysfs.ts';
import type { Cleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';

export type RunOptions = {
  bundle: string;
  target: string;
  retain?: string;
  yes: boolean;
  grow: boolean;
  // Decompress and hash the whole image in RAM before the point of no return:
  // true always, false never, undefined when the bundle has no block map (proof.ts).
  verifyRaw?: boolean;
  // Read the disk back after writing and compare with the raw sha256.
  verifyWritten: boolean;
  // What happens to the blocks the bundle's block map leaves out (write.ts).
  unmapped?: Unmapped;
  // A recorded layout fingerprint the target must match.
  fingerprint?: string;
  // The manifest's `compatible` must equal this.
  compatible?: string;
  allowDowngrade: boolean;
  // Retention caps: bytes per file and in all, number of entries.
  caps?: Caps;
  // Trusted public keys (files or directories of *.pub): when any, the bundle must be signed by one.
  trust: readonly string[];
  // The bundle directory is already a private copy in RAM (initramfs): hash it in place.
  bundleInRam?: boolean;
  // Overrides for finding the old system: SPEC:PATH, as for pack --mount.
  oldMounts: readonly string[];
  // Parent of this run's private working directory (mounts, RAM stage).
  runBase: string;
  confirm: (question: string) => Promise<boolean>;
  // Fired by SIGINT/SIGTERM/SIGHUP (util/interrupt.ts).
  signal?: AbortSignal;
  // Where the retained set is saved before the first write (retention/archive.ts).
  keep: readonly KeepPlace[];
  // Also save it in the bundle directory (reimage-retained/) when that is writable.
  keepInBundle: boolean;
  // Reimage without keeping anything: an empty or absent retention list is refused without it.
  noRetain?: boolean;
  // Called right before the first byte is written (the initramfs records its failure action).
  beforeWrite?: () => Promise<void>;
};

export type Ctx = {
  o: RunOptions;
  log: Log;
  cleanup: Cleanup;
  // This run's private directory under runBase (made by preflight).
  runDir: string;
  started: Date;
  timings: { stage: string; seconds: number }[];
  bundle?: Bundle;
  disk?: Disk;
  list?: { name: string; entries: ListEntry[] };
  oldParts?: PartIdentity[];
  oldRoot?: string;
  scan?: Scan;
  oldUsers?: IdMap;
  oldGroups?: IdMap;
  captured?: Captured[];
  stagedImage?: string;
  wrote?: { bytes: number; written: number; seconds: number; sha256: string; checked: string; unmapped: string; readBack?: 'ok' };
  newRoot?: string;
  entries?: EntryReport[];
  oldUmount?: () => Promise<void>;
  newUmount?: () => Promise<void>;
  notes: string[];
  // The keep places of this run, and the archive directory name for this disk.
  keep: readonly KeepPlace[];
  archiveKey?: string;
  // A retained set saved by an earlier run that failed after its point of no return: restored instead of a scan.
  resumed?: { place: KeepPlace; archive: Archive };
  // Where this run saved the retained set before writing.
  saved: { where: string; survivesReboot: boolean }[];
  // How the image's bytes are proven before writing (proof.ts).
  proof?: string;
  // A plan (reads, never writes, takes no lock), and the stage the flow is in (for the report).
  planOnly?: boolean;
  phase?: string;
};
