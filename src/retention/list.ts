// The retention list: which files make this machine itself.
//
//   # comment
//   /etc/machine-id            required: missing on the old system => refuse before writing
//   ?/etc/ssh/ssh_known_hosts   optional: missing => noted in the report
//   /etc/ssh/ssh_host_*_key    globs: * ? [...] within one path component
//   /etc/NetworkManager/system-connections   a directory means everything below it
//
// Lines are bytes: a UTF-8 list matches UTF-8 names, and `\xNN`, `\n`, `\t`,
// `\\` write any other byte; `\*`, `\?`, `\[` are literal. `*` and `?` do not
// match a leading dot, as in the shell. Relative paths, `.`/`..`, empty
// components and NUL are refused.
import { retentionError } from '../errors.ts';
import { bpath, display, fromBuffer, type BPath } from '../util/bytes.ts';

export type Component = { literal: BPath } | { glob: RegExp; source: string };

export type ListEntry = {
  line: number;
  // The line as written (for messages and the report).
  text: string;
  optional: boolean;
  components: Component[];
};

const MAX_LINE = 4096;

// parseList: every entry of a list, or a retention error naming the first bad line.
export function parseList(data: Buffer, name: string): ListEntry[] {
  const lines = fromBuffer(data).split('\n');
  const entries: ListEntry[] = [];
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) return;
    entries.push(parseLine(line, i + 1, name));
  });
  return entries;
}

function parseLine(line: string, n: number, name: string): ListEntry {
  const where = `${name} line ${n}`;
  const bad = (why: string) => retentionError(`${where} "${display(line)}": ${why}; fix the retention list`, { list: name, line: n });
  if (line.length > MAX_LINE) throw bad(`longer than ${MAX_LINE} bytes`);
  if (line.includes('\0')) throw bad('contains a NUL byte');
  const optional = line.startsWith('?');
  const path = optional ? line.slice(1).trim() : line;
  if (!path.startsWith('/')) throw bad('is not an absolute path (it must start with /)');
  const parts = path.replace(/\/+$/, '').split('/').slice(1);
  if (parts.length === 0) throw bad('names the whole file system (/), which cannot be retained');
  const components = parts.map((p) => {
    if (p === '') throw bad('has an empty path component (//)');
    if (p === '.' || p === '..') throw bad(`has a "${p}" component; write the path without it`);
    return parseComponent(p, bad);
  });
  return { line: n, text: display(line), optional, components };
}

function parseComponent(p: string, bad: (why: string) => Error): Component {
  let literal = '';
  let re = '';
  let isGlob = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') {
      const [ch, used] = unescapeList(p, i, bad);
      literal += ch;
      re += escapeRe(ch);
      i += used;
    } else if (c === '*' || c === '?') {
      isGlob = true;
      re += c === '*' ? '[^/]*' : '[^/]';
    } else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) throw bad('has a "[" without a closing "]"');
      const body = p
        .slice(i + 1, end)
        .replace(/^!/, '^')
        .replace(/\\/g, '\\\\');
      re += `[${body}]`;
      isGlob = true;
      i = end;
    } else {
      literal += c;
      re += escapeRe(c);
    }
  }
  if (!isGlob) return { literal: bpath(literal) };
  // A leading * or ? never matches a dot file, as in the shell.
  const lead = p.startsWith('*') || p.startsWith('?') || p.startsWith('[') ? '(?!\\.)' : '';
  return { glob: new RegExp(`^${lead}${re}$`, 's'), source: display(p) };
}

function unescapeList(p: string, i: number, bad: (why: string) => Error): [string, number] {
  const n = p[i + 1];
  if (n === 'n') return ['\n', 1];
  if (n === 't') return ['\t', 1];
  if (n === '\\' || n === '*' || n === '?' || n === '[' || n === ' ' || n === '#') return [n, 1];
  if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(p.slice(i + 2, i + 4))) {
    const ch = String.fromCharCode(parseInt(p.slice(i + 2, i + 4), 16));
    if (ch === '\0') throw bad('has \\x00 (NUL) in a path');
    if (ch === '/') throw bad('has \\x2f (/) inside a path component');
    return [ch, 3];
  }
  throw bad(`has an unknown escape "\\${n ?? ''}" (use \\xNN, \\n, \\t or \\\\)`);
}

const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

// coveredBy: the list entry that names PATH (an in-root path), itself or as
// a directory above it, or undefined when no line of the list reaches it.
export function coveredBy(entries: readonly ListEntry[], path: BPath): ListEntry | undefined {
  const parts = path.split('/').slice(1);
  return entries.find((e) => e.components.length <= parts.length && e.components.every((c, i) => ('literal' in c ? c.literal === parts[i] : c.glob.test(parts[i]!))));
}
