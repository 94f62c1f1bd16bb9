// What every bundle source kind declares (see index.ts for the registry):
// how a spec is recognised, and, once opened, how the manifest and its
// signatures are read and how each file the manifest names is brought into a
// local directory while hashing (resumed where the kind can). The code that
// uses a source never asks which kind it has.
import type { NetFlags } from '../net/options.ts';
import type { Cleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';

export type Expect = { sha256: string; size?: number };
// BYTES that travelled this time (0 when a complete, checked file was on hand).
export type Brought = { sha256: string; size: number; fetched: number; reused: boolean };

export type Reader = {
  // The bundle's place, for messages (a directory, a device and path, a URL).
  where: string;
  // A directory that may be used in place, with no copy (a local bundle directory).
  local?: string;
  // The block device the bundle is on, and its whole disk (never chosen as the target by model or size alone).
  device?: { source: string; disk?: string };
  // A small file of the bundle (manifest, signatures), or undefined when it is absent.
  read: (name: string) => Promise<Buffer | undefined>;
  // The size of a bundle file as the source states it (for the RAM budget), when it can tell.
  size: (name: string) => Promise<number | undefined>;
  // NAME into DEST, hashed while it comes and checked against EXPECT (a bundle error naming the file otherwise).
  bring: (name: string, dest: string, expect: Expect, add: (n: number) => void) => Promise<Brought>;
  // Unmount, close connections.
  close: () => Promise<void>;
};

export type SourceEnv = {
  log: Log;
  cleanup: Cleanup;
  // Where a kind may mount or keep its working files (the run base).
  runBase: string;
  net: NetFlags;
  // Retries after a network failure (http).
  retries?: number;
  signal?: AbortSignal;
  // How long to wait for a device to appear (block devices), in seconds.
  waitSeconds?: number;
};

export type SourceKind = {
  // The forms of the spec, for the "not understood" message.
  forms: string;
  matches: (spec: string) => boolean;
  open: (spec: string, env: SourceEnv) => Promise<Reader>;
};
