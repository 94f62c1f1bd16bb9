// Extended-attribute verbs: getfattr and setfattr (Node has no xattr API).
// Parsing their output is the retention layer's job (retention/xattr.ts).
import { runVia, type RunResult, type Via } from './exec.ts';

// getfattrDump: `getfattr -d -m - -e base64` of PATHS (every name, values as
// base64); exit 1 is returned, not thrown (a file system without xattrs, or
// one of many files unreadable). noFollow reads a symlink's own. Exit default: retention.
export async function getfattrDump(paths: readonly string[], noFollow: boolean, v: Via = {}): Promise<RunResult> {
  const args = ['--absolute-names', '-d', '-m', '-', '-e', 'base64', ...(noFollow ? ['-h'] : []), ...paths];
  return runVia(v)('getfattr', args, { okCodes: [0, 1], exit: v.exit ?? 'retention' });
}

// setfattrValue: set attribute NAME to the base64 VALUE; noFollow writes a symlink's own (exit default: afterWrite).
export async function setfattrValue(path: string, name: string, value: string, noFollow: boolean, v: Via = {}): Promise<void> {
  await runVia(v)('setfattr', [...(noFollow ? ['-h'] : []), '-n', name, '-v', `0s${value}`, path], { exit: v.exit ?? 'afterWrite' });
}
