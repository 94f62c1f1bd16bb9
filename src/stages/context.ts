// What the stages share and what they hand each other. A stage takes the run
// (options, log, cleanup stack, its private directory) and the typed results
// of the stages before it, and returns its own: preflight -> Preflight,
// scanOld -> Scanned, stage -> Staged, keepRetained -> Saved[], then
// pointOfNoReturn -> Passed, which every writing stage requires. The report
// reads a Trail: what the run established so far (any part may be missing,
// because a run can stop anywhere).
import type { Unmapped } from '../bmap/format.ts';
import type { CompactReport } from '../chunks/compact.ts';
import type { Bundle } from '../bundle/read.ts';
import type { Archive, KeepPlace } from '../retention/archive.ts';
import type { Captured } from '../retention/capture.ts';
import type { IdMap } from '../retention/ids.ts';
import type { ListEntry } from '../retention/list.ts';
import type { EntryReport } from '../retention/restore.ts';
import type { Caps, Scan } from '../retention/scan.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Sys } from '../system/sys.ts';
import type { Disk } from '../target/sysfs.ts';
import type { KeptPart } from '../target/kept.ts';
import type { Reentry } from './reentry.ts';
import type { Cleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';
import type { Deliver } from './outbox.ts';

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
  // After restoring, point the UEFI firmware's boot entry at the new ESP (efi.ts); on in the initramfs.
  efiEntry?: boolean;
  // How many runs past the point of no return one re-entry record allows (default REENTRY_ATTEMPTS).
  reentryAttempts?: number;
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
  // Where a chunked bundle's image came from when it was assembled from seeds (sources/assembled.ts), for the report.
  assembly?: CompactReport;
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
  // Partitions to keep (PARTLABEL=, PARTUUID=, TYPE=; target/kept.ts), besides the bundle's own `keep`.
  keepParts?: readonly string[];
  // The bundle as the operator gave it (--bundle, rd.reimage.bundle=), for the re-entry record.
  bundleLocation?: string;
  // The partition node the bundle was read from (a device source): kept when it is on the target.
  bundlePart?: string;
  // Called right before the first byte is written (the initramfs records its failure action).
  beforeWrite?: () => Promise<void>;
  // The report endpoint: the finish stage POSTs the report there and keeps it in the new system when that fails (outbox.ts).
  deliver?: Deliver;
};

// The run itself: options, log, cleanup stack, its private directory under
// runBase, the OS it works on (processes, /sys, /proc: fakes in unit tests),
// and whether it is a plan (reads only, takes no lock).
// notes: lines for the report (the trail's), e.g. which LVM volume groups were activated.
export type Run = { o: RunOptions; log: Log; cleanup: Cleanup; runDir: string; sys: Sys; plan: boolean; notes: string[] };

export type RetentionList = { name: string; entries: ListEntry[] };
export type Ids = { users: IdMap; groups: IdMap };

// Where the retained set of this run is saved: the places in the order they
// are tried, and the set's directory name for this disk.
// home: the kept partition of the target among them, when the run chose one (keep.ts keptHome).
export type KeepAt = { places: readonly KeepPlace[]; key: string; home?: KeepPlace };

// A retained set an earlier run saved before it failed past its point of no return.
export type Resumed = { place: KeepPlace; archive: Archive };

// One place that holds this run's retained set.
export type Saved = { where: string; survivesReboot: boolean };

// kept: the partitions the run never writes (stages/kept.ts).
// reentry: a run with this bundle passed its point of no return on this disk before (stages/reentry.ts).
export type Preflight = { bundle: Bundle; disk: Disk; list: RetentionList; oldParts: PartIdentity[]; keep: KeepAt; kept: KeptPart[]; reentry?: Reentry };

// What the old system gives: its users and groups (for mapping owners by
// name), what the list found in it, or the saved set to restore instead.
export type Scanned = { ids: Ids; scan: Scan; resumed?: Resumed; unmount: () => Promise<void> };

// The image proven in RAM and every retained entry captured beside it.
export type Staged = { image: string; captured: Captured[]; proof: string };

export type Wrote = { bytes: number; written: number; seconds: number; sha256: string; checked: string; unmapped: string; readBack?: 'ok' };

// EfiReport: what happened to the UEFI firmware's boot entries after the write (efi.ts).
export type EfiReport = { outcome: 'updated' | 'skipped' | 'failed'; reason: string; removed: string[]; created?: string };

export type Restored = { root: string; entries: EntryReport[]; unmount: () => Promise<void> };

// What the run established so far, for the report (a run can stop anywhere).
export type Trail = {
  // A plan (reads, never writes, takes no lock) or a run; the stage the flow is in.
  command: 'run' | 'plan';
  phase?: string;
  started: Date;
  timings: { stage: string; seconds: number }[];
  notes: string[];
  pre?: Preflight;
  scanned?: Scanned;
  proof?: string;
  staged?: Staged;
  saved: readonly Saved[];
  assembly?: CompactReport;
  wrote?: Wrote;
  restored?: Restored;
  efi?: EfiReport;
};
