// Kernel arguments for the initramfs flow. Only known keys are accepted;
// a duplicated or oversized value is refused (a typo must not silently arm a
// default). `rd.reimage` alone arms; `rd.reimage=0` disarms.
import { z } from 'zod';
import { usageError } from '../errors.ts';

export const MODES = ['auto', 'interactive', 'plan'] as const;
export const ON_FAILURE = ['reboot', 'shell', 'poweroff', 'halt'] as const;

// The kernel arguments and what each means (the manual page is made from this table).
export const KERNEL_ARGS = {
  'rd.reimage': 'arm the reimage flow (rd.reimage=0 disarms)',
  'rd.reimage.bundle': 'LOCATION: LABEL=…:/dir, UUID=…, PARTLABEL=…, PARTUUID=…, /dev/disk/by-…/…:/dir, or an https:// or http:// URL',
  'rd.reimage.target': 'SELECTOR: serial:X, wwn:X, partuuid:GUID, /dev/disk/by-id/…, by-path:NAME, model:X or size:MIN-MAX (kernel names such as /dev/sda are refused)',
  'rd.reimage.mode': 'auto (write without asking), interactive (ask on the console) or plan (check everything, write nothing)',
  'rd.reimage.on-failure': 'reboot, shell, poweroff or halt after a failure past the point of no return',
  'rd.reimage.test-pause': "tests only: head makes the run wait just before the image's first MiB goes down (for a power cut there)",
} as const;
export const PAUSES = ['head'] as const;
const KEYS = Object.keys(KERNEL_ARGS) as (keyof typeof KERNEL_ARGS)[];
const MAX_VALUE = 512;

export const Cmdline = z.strictObject({
  armed: z.boolean(),
  bundle: z.string().min(1).optional(),
  target: z.string().min(1).optional(),
  mode: z.enum(MODES).optional(),
  onFailure: z.enum(ON_FAILURE).optional(),
  testPause: z.enum(PAUSES).optional(),
});
export type Cmdline = z.infer<typeof Cmdline>;

// splitCmdline: words of /proc/cmdline; double quotes group, as the kernel does.
export function splitCmdline(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let any = false;
  for (const ch of text.trim()) {
    if (ch === '"') {
      quoted = !quoted;
      any = true;
    } else if (/\s/.test(ch) && !quoted) {
      if (any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) out.push(cur);
  return out;
}

export function parseCmdline(text: string): Cmdline {
  const seen = new Map<string, string>();
  for (const word of splitCmdline(text)) {
    if (!word.startsWith('rd.reimage')) continue;
    const i = word.indexOf('=');
    const key = i < 0 ? word : word.slice(0, i);
    const value = i < 0 ? '' : word.slice(i + 1);
    if (!(KEYS as readonly string[]).includes(key)) {
      throw usageError(`kernel argument ${key} is not known: use one of ${KEYS.join(', ')}`);
    }
    if (seen.has(key)) throw usageError(`kernel argument ${key} is given twice: give it once`);
    if (value.length > MAX_VALUE) throw usageError(`kernel argument ${key} is ${value.length} characters long: the limit is ${MAX_VALUE}`);
    seen.set(key, value);
  }
  const armedValue = seen.get('rd.reimage');
  if (armedValue !== undefined && !['', '1', '0', 'yes', 'no'].includes(armedValue)) {
    throw usageError(`kernel argument rd.reimage=${armedValue} is not understood: write rd.reimage (or rd.reimage=0 to disarm)`);
  }
  const parsed = Cmdline.safeParse({
    armed: armedValue !== undefined && armedValue !== '0' && armedValue !== 'no',
    bundle: seen.get('rd.reimage.bundle') || undefined,
    target: seen.get('rd.reimage.target') || undefined,
    mode: seen.get('rd.reimage.mode') || undefined,
    onFailure: seen.get('rd.reimage.on-failure') || undefined,
    testPause: seen.get('rd.reimage.test-pause') || undefined,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = { mode: 'rd.reimage.mode', onFailure: 'rd.reimage.on-failure', testPause: 'rd.reimage.test-pause' }[String(issue.path[0])] ?? String(issue.path[0]);
    throw usageError(`kernel argument ${key}=${seen.get(key) ?? ''} is not allowed: ${issue.message}`);
  }
  return parsed.data;
}
