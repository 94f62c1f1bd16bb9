// Paths on Linux are bytes, not text. Internally a path is a "binary string":
// one char per byte (latin1), so names with newlines or non-UTF-8 bytes
// round-trip exactly; fs calls get Buffer.from(p, 'latin1').

export type BPath = string & { readonly __bpath: unique symbol };

export const bpath = (s: string): BPath => s as BPath;
export const fromBuffer = (b: Buffer): BPath => b.toString('latin1') as BPath;
export const toBuffer = (p: string): Buffer => Buffer.from(p, 'latin1');
// For text we were handed as UTF-8 (command line, list files read as text).
export const fromUtf8 = (s: string): BPath => Buffer.from(s, 'utf8').toString('latin1') as BPath;

// display: readable UTF-8 with every byte that is not valid UTF-8 or is a
// control character shown as \xNN, so one entry stays one log line.
export function display(p: string): string {
  const text = toBuffer(p).toString('utf8');
  if (Buffer.from(text, 'utf8').equals(toBuffer(p))) return escapeControls(text);
  let out = '';
  const buf = toBuffer(p);
  for (let i = 0; i < buf.length; ) {
    const len = utf8SeqLen(buf, i);
    if (len > 0) {
      out += escapeControls(buf.subarray(i, i + len).toString('utf8'));
      i += len;
    } else {
      out += `\\x${buf[i]!.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return out;
}

// isUtf8: whether the path can be handed to another program as an argument.
export const isUtf8 = (p: string): boolean => Buffer.from(toBuffer(p).toString('utf8'), 'utf8').equals(toBuffer(p));

function escapeControls(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is escaped here
  return s.replace(/[\x00-\x1f\x7f\\]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i]!;
  const need = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
  if (need === 0 || i + need > b.length) return 0;
  for (let k = 1; k < need; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  return Buffer.from(b.subarray(i, i + need).toString('utf8'), 'utf8').equals(b.subarray(i, i + need)) ? need : 0;
}

// Human sizes for log lines: 1.5 GiB, 320 MiB, 4.0 KiB.
export function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

// parseSize: "512", "64M", "1.5G", "2TiB" (binary units) in bytes, or undefined.
export function parseSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  return m ? Math.round(Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase())) : undefined;
}
