// Extended attributes through the attr tools (Node has no xattr API). Every
// name is included (-m -): user.*, security.* (capabilities, SELinux) and
// system.posix_acl_* (POSIX ACLs). Values travel as base64.
//
// Tools take text arguments, but file names are bytes; so callers hand over a
// path that is always plain ASCII: /proc/<pid>/fd/<fd> (an fd we hold on the
// file or on its parent directory) plus an ASCII name.
import type { Run } from '../system/exec.ts';
import { getfattrDump, setfattrValue } from '../system/tools.ts';

export type Xattr = { name: string; value: string }; // value: base64

// parseGetfattr: `getfattr -d -m - -e base64` output into name/value pairs.
export function parseGetfattr(text: string): Xattr[] {
  const out: Xattr[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    const name = i < 0 ? line : line.slice(0, i);
    const raw = i < 0 ? '' : line.slice(i + 1);
    out.push({ name, value: decodeValue(raw) });
  }
  return out;
}

// getfattr prints 0s<base64>, 0x<hex> or "text" depending on the value.
function decodeValue(raw: string): string {
  if (raw.startsWith('0s')) return raw.slice(2);
  if (raw.startsWith('0x')) return Buffer.from(raw.slice(2), 'hex').toString('base64');
  if (raw.startsWith('"') && raw.endsWith('"')) return Buffer.from(raw.slice(1, -1), 'latin1').toString('base64');
  return Buffer.from(raw, 'latin1').toString('base64');
}

// readXattrs: all attributes of PATH; noFollow reads a symlink's own.
export async function readXattrs(path: string, noFollow: boolean, r?: Run): Promise<Xattr[]> {
  // exit 1 with "Operation not supported": the file system has no xattrs at all.
  const out = await getfattrDump([path], noFollow, r ? { run: r } : {});
  if (out.exitCode !== 0 && !/not supported/i.test(out.stderr)) {
    throw new Error(`getfattr ${path}: ${out.stderr.trim()}`);
  }
  return parseGetfattr(out.stdout);
}

// readXattrsMany: the attributes of many PATHS in one getfattr (a process per
// file made 10,000 entries take minutes), keyed by path; paths must be ASCII
// (fd paths), as getfattr escapes others in its headers. Undefined when
// getfattr reported any error: the caller then asks path by path, to name it.
export async function readXattrsMany(paths: readonly string[], r?: Run): Promise<Map<string, Xattr[]> | undefined> {
  const out = await getfattrDump(paths, false, r ? { run: r } : {});
  return out.exitCode === 0 ? parseGetfattrFiles(out.stdout) : undefined;
}

// parseGetfattrFiles: output for several files (a `# file: PATH` line above each) by path.
export function parseGetfattrFiles(text: string): Map<string, Xattr[]> {
  const out = new Map<string, Xattr[]>();
  for (const block of text.split(/\n(?=# file: )/)) {
    const m = /^# file: (.*)$/m.exec(block);
    if (m?.[1] !== undefined) out.set(m[1], parseGetfattr(block));
  }
  return out;
}

// writeXattr: set one attribute; noFollow writes a symlink's own.
export async function writeXattr(path: string, x: Xattr, noFollow: boolean, r?: Run): Promise<void> {
  await setfattrValue(path, x.name, x.value, noFollow, r ? { run: r } : {});
}

// fdPath: an ASCII path another process can use to reach a file we hold open.
export const fdPath = (fd: number, name?: string) => `/proc/${process.pid}/fd/${fd}${name ? `/${name}` : ''}`;
