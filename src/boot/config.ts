// The policy baked into the initrd (/etc/reimage/config.json), and how kernel
// arguments narrow it. Kernel arguments can only make a run *less*
// destructive or less open: a mode nearer to `plan`, a target that must also
// match the baked selector, a failure action other than a shell unless the
// policy allows shells. They can never loosen the policy; which keys are
// trusted, and whether unsigned bundles are accepted, is baked and only baked.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { KeepSelector } from '../bundle/keepspec.ts';
import { parseJson } from '../util/json.ts';
import { usageError } from '../errors.ts';
import { MODES, ON_FAILURE, type Cmdline } from './cmdline.ts';
import { UNMAPPED } from '../bmap/format.ts';
import { loadKeyDir } from '../bundle/sign.ts';
import { NetLimits } from '../net/options.ts';
import { REPORT_FORMATS } from '../net/hawkbit.ts';

export const Config = z.strictObject({
  // Where the bundle is: LABEL=…:/path, UUID=…, PARTLABEL=…, PARTUUID=…, or /dev/disk/by-*/…:/path.
  bundle: z.string().min(1).optional(),
  // Which disk is the target (see select.ts).
  target: z.string().min(1).optional(),
  mode: z.enum(MODES).default('auto'),
  onFailure: z.enum(ON_FAILURE).default('halt'),
  // Whether a root shell on the console may be offered after a failure.
  allowShell: z.boolean().default(false),
  // Diagnostic shells on tty2 and tty3 while reimage runs.
  diagnosticShells: z.boolean().default(false),
  // After success.
  after: z.enum(['reboot', 'poweroff']).default('reboot'),
  // Default retention list (the bundle's own list is used when absent).
  retention: z.string().optional(),
  // Keep nothing of the old system: without it, no list (or an empty one) refuses the run (retention/guard.ts).
  noRetain: z.boolean().default(false),
  grow: z.boolean().default(false),
  // Partitions every armed run keeps, besides the bundle's `keep` (PARTLABEL=, PARTUUID=, TYPE=; target/kept.ts).
  keep: z.array(KeepSelector).max(16).default([]),
  // Runs past the point of no return one re-entry record allows (stages/reentry.ts): the next one stops instead of writing again.
  reentryAttempts: z.number().int().min(1).max(100).default(10),
  // Decode and hash the whole image before writing: true always, false never, absent when the bundle has no block map.
  verifyRaw: z.boolean().optional(),
  verifyWritten: z.boolean().default(false),
  // What happens to blocks the bundle's block map leaves out: zero, write, discard or leave.
  unmapped: z.enum(UNMAPPED).default('zero'),
  // A recorded layout fingerprint (reimage fingerprint) the target must match.
  fingerprint: z.string().optional(),
  compatible: z.string().optional(),
  allowDowngrade: z.boolean().default(false),
  // Retention caps in bytes.
  maxEntryBytes: z.number().int().positive().optional(),
  maxRetainedBytes: z.number().int().positive().optional(),
  // Cap on the number of retained entries (default 100000).
  maxEntries: z.number().int().positive().optional(),
  // With no trusted key (*.pub) baked next to config.json, accept unsigned
  // bundles. Without it such an initrd refuses every bundle: trust fails closed.
  allowUnsigned: z.boolean().default(false),
  // Build the initrd with the generator's network module (implied by a bundle URL): see network.ts.
  network: z.boolean().default(false),
  // Where the JSON report is POSTed at the end of an armed run, whatever the outcome (net/post.ts).
  reportUrl: z.url({ protocol: /^https?$/ }).optional(),
  // The body POSTed to reportUrl: the report itself, or hawkBit's DDI feedback (net/hawkbit.ts).
  reportFormat: z.enum(REPORT_FORMATS).optional(),
  // Download limits for a bundle URL, as --stall-timeout, --deadline and --retries (net/options.ts).
  ...NetLimits.shape,
});
export type Config = z.infer<typeof Config>;

export const CONFIG_DIR = '/etc/reimage';
// A site CA (PEM) baked next to config.json by reimage initrd --ca: trusted for every https:// download.
export const CA_FILE = 'ca.pem';
// Credentials (one line, as for --auth-file) baked next to config.json by reimage initrd
// --auth-file (0600): sent with every download and the report POST.
export const AUTH_FILE = 'auth';

export async function loadConfig(dir = CONFIG_DIR): Promise<Config> {
  const path = `${dir}/config.json`;
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return Config.parse({});
  return parseJson(text, Config, `reimage config ${path}`, 'fix it and rebuild the initrd', usageError);
}

const MODE_RANK = { plan: 0, interactive: 1, auto: 2 } as const;

export type Effective = Config & { targets: string[] };

// narrow: the policy after kernel arguments; a loosening argument is refused.
export function narrow(c: Config, k: Cmdline): Effective {
  const mode = k.mode ?? c.mode;
  if (MODE_RANK[mode] > MODE_RANK[c.mode]) {
    throw usageError(`kernel argument rd.reimage.mode=${mode} would loosen the baked mode ${c.mode}: the initrd allows ${c.mode} or less`);
  }
  const onFailure = k.onFailure ?? c.onFailure;
  if (onFailure === 'shell' && !c.allowShell) {
    throw usageError('kernel argument rd.reimage.on-failure=shell is not allowed by the baked policy (allowShell is false): rebuild the initrd with allowShell to permit it');
  }
  if (k.bundle && c.bundle && k.bundle !== c.bundle) {
    throw usageError(`kernel argument rd.reimage.bundle=${k.bundle} differs from the baked bundle location ${c.bundle}: remove the argument`);
  }
  const bundle = k.bundle ?? c.bundle;
  // Both selectors must match the chosen disk when both are given.
  const targets = [c.target, k.target].filter((t): t is string => !!t);
  return { ...c, mode, onFailure, ...(bundle ? { bundle } : {}), targets };
}

export type BakedTrust = { trust: string[]; keys: string[]; allowUnsigned: boolean };

// bakedTrust: what the initrd was built to trust. Keys baked next to
// config.json make a signature by one of them required (allowUnsigned does not
// weaken that); with none, unsigned bundles are accepted only when the config
// says allowUnsigned, and otherwise every bundle is refused.
export async function bakedTrust(dir: string, c: Pick<Config, 'allowUnsigned'>): Promise<BakedTrust> {
  const keys = (await loadKeyDir(dir)).map((k) => k.id);
  if (keys.length) return { trust: [dir], keys, allowUnsigned: false };
  if (c.allowUnsigned) return { trust: [], keys, allowUnsigned: true };
  throw usageError(
    `this initrd trusts no signing key (no *.pub in ${dir}) and its config does not set allowUnsigned: rebuild it with reimage initrd --config DIR, DIR holding the fleet's .pub key (or "allowUnsigned": true in DIR/config.json to accept unsigned bundles)`,
  );
}
