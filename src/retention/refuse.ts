// The one sentence for an old-system read that failed: which entry (path and
// list line), which call, which errno, and what to do about that errno. Used
// by scan and capture so that no read error escapes as a raw (internal) error.
import { ReimageError, retentionError } from '../errors.ts';
import { constants } from 'node:os';
import { display, type BPath } from '../util/bytes.ts';

// libuv names only the errnos it knows: EBADMSG (a failed ext4 checksum) comes as "Unknown system error -74".
// EUCLEAN (117, ext4's "structure needs cleaning") is not even in os.constants.
const NAMES = new Map<number, string>([[117, 'EUCLEAN'], ...Object.entries(constants.errno).map(([name, n]) => [n, name] as [number, string])]);
const errnoName = (e: NodeJS.ErrnoException): string | undefined => (e.code && !e.code.startsWith('Unknown') ? e.code : e.errno !== undefined ? (NAMES.get(Math.abs(e.errno)) ?? e.code) : e.code);

// What to do, per errno; transient ones (the entry changed while read) say "run again".
const FIX: Record<string, string> = {
  EIO: 'the old disk or file system is damaged there: run fsck on the old file system (or copy the entry off by hand) and run again',
  EUCLEAN: 'the old file system is corrupt there: run fsck on it and run again',
  EBADMSG: 'the old file system fails its checksums there: run fsck on it and run again',
  ENAMETOOLONG: 'the path is longer than the kernel allows: shorten it on the old system',
  EACCES: 'access is denied even to root (a security module?): fix its permissions on the old system',
  EPERM: 'access is denied even to root (a security module?): fix its permissions on the old system',
};
const TRANSIENT: Record<string, string> = {
  ENOENT: 'it vanished while it was being read: stop what changes it and run again',
  ENOTDIR: 'it changed while it was being read: stop what changes it and run again',
  ELOOP: 'it was replaced by a symbolic link while it was being read: stop what changes it and run again',
};

// readFailed: the refusal for a failed read of PATH (from list line LINE, if an entry) by OP.
export function readFailed(op: string, path: BPath, line: number | undefined, err: unknown): ReimageError {
  if (err instanceof ReimageError && err.exit !== 'retention') return err;
  const e = err as NodeJS.ErrnoException;
  const code = errnoName(e);
  const what = code ?? (e instanceof Error ? e.message : String(err));
  const transient = code ? TRANSIENT[code] : undefined;
  const fix = transient ?? `${(code && FIX[code]) ?? 'check the old system'}${line === undefined ? '' : ', or remove the line from the list'}`;
  const who = line === undefined ? `the old system's ${display(path)}` : `retained entry ${display(path)} (list line ${line})`;
  return retentionError(`${who} cannot be read: ${op} failed with ${what}; ${fix}`, { path: display(path), line, op, errno: code });
}
