// The initramfs flow: kernel arguments and baked policy -> bundle copied into
// RAM -> target chosen by stable identity -> the same stages as `reimage run`.
// It decides what the machine does next and leaves that word in
// /run/reimage/action for the entry glue (initramfs/reimage-entry.sh):
//   continue  not armed, or plan mode: boot on as if nothing happened
//   reboot    success (the new system boots), or a failure before the point
//             of no return (nothing was written: the old system boots again)
//   poweroff  success with after=poweroff, or on-failure=poweroff
//   shell     a failure after the point of no return, when policy allows
//   halt      a failure after the point of no return: stop with the reason on
//             screen; the disk was invalidated and must not boot
// The file always holds what to do should the binary die now: "reboot" from
// the start (nothing written), the failure action from just before the point
// of no return, the outcome at the end. "continue" is only chosen when the
// kernel command line has a root= to continue to: without one the generator
// would fall into its emergency path, so the machine reboots instead.
import { VERSION } from '../version.ts';
import { access, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT, ReimageError, describe, usageError } from '../errors.ts';
import { limitsAsFlags, type NetFlags } from '../net/options.ts';
import { deliverTo } from '../net/deliver.ts';
import { runFlow } from '../stages/index.ts';
import type { Deliver } from '../stages/outbox.ts';
import { createCleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';
import { startShell } from '../system/exec.ts';
import { memAvailable } from '../target/sysfs.ts';
import { human } from '../util/bytes.ts';
import { DEFAULT_CAPS } from '../retention/scan.ts';
import { parseCmdline, splitCmdline } from './cmdline.ts';
import { bakedTrust, loadConfig, narrow, AUTH_FILE, CA_FILE, CONFIG_DIR } from './config.ts';
import { saveLog } from './locate.ts';
import { isUrl } from '../util/url.ts';
import { urlOutbox } from '../stages/keep.ts';
import type { Cleanup } from '../util/cleanup.ts';
import { selectTarget, wholeDisks } from './select.ts';
import type { CompactReport } from '../chunks/compact.ts';
import { bootPlaces, mediumPlace } from './keep.ts';
import { deliver as deliverOutcome, MEDIUM_OUTBOX, sendKept } from '../stages/outcome.ts';

export type Action = 'continue' | 'reboot' | 'poweroff' | 'shell' | 'halt';

// What a bundle source gives the initramfs flow: a private copy in RAM, and the block device it came from, when it did.
export type Fetched = { dir: string; device?: { source: string; disk?: string }; assembly?: CompactReport };
// BRING: the bundle at SPEC copied into RAM (a source kind: src/sources/ram.ts), signed by a key of TRUST, a site CA applied.
// seedTarget: the target disk when it is chosen before the bundle comes (a URL): a chunked bundle is assembled from it.
export type Bring = (spec: string, b: { cleanup: Cleanup; trust: readonly string[]; ca?: string; limits?: NetFlags; signal?: AbortSignal; seedTarget?: string }) => Promise<Fetched>;

// failureDoc: the --json document of a failure the flow never saw (the bundle could not be fetched), so the fleet hears of it too.
export type BootOptions = {
  cmdline: string;
  configDir: string;
  runBase: string;
  confirm: (q: string) => Promise<boolean>;
  bring: Bring;
  signal?: AbortSignal;
  failureDoc?: (err: unknown) => unknown;
};

export const defaultBootOptions = { cmdline: '/proc/cmdline', configDir: CONFIG_DIR, runBase: '/run/reimage' };

export async function boot(o: BootOptions, log: Log): Promise<{ action: Action; code: number }> {
  let policy: ReturnType<typeof narrow> | undefined;
  let fetched: Fetched | undefined;
  let target: string | undefined;
  let deliver: Deliver | undefined;
  const cleanup = createCleanup(log);
  let text = '';
  try {
    await setAction(o.runBase, 'reboot');
    const started = await startupMs();
    if (started !== undefined) log.info(`reimage ${VERSION}: first output ${started} ms after exec`);
    text = await readFile(o.cmdline, 'utf8');
    const k = parseCmdline(text);
    if (!k.armed) {
      log.info('reimage: not armed (no rd.reimage on the kernel command line): continuing the boot');
      return continueOrReboot(text, log);
    }
    if (k.testPause) process.env['REIMAGE_TEST_PAUSE'] = k.testPause;
    policy = narrow(await loadConfig(o.configDir), k);
    log.info(`reimage: armed, mode ${policy.mode}, on failure ${policy.onFailure}, ${human(await memAvailable())} of RAM available`);
    if (policy.diagnosticShells) for (const tty of ['/dev/tty2', '/dev/tty3']) startShell(tty);
    // Decided before the bundle is looked for: an initrd that trusts nothing refuses every bundle.
    const baked = await bakedTrust(o.configDir, policy);
    log.info(baked.allowUnsigned ? 'reimage: no trusted keys baked; unsigned bundles accepted (allowUnsigned)' : `reimage: bundles must be signed by ${baked.keys.join(' or ')}`);
    if (!policy.bundle) throw usageError('no bundle location: give rd.reimage.bundle= or bake "bundle" into the initrd config');
    // A site CA and credentials baked next to config.json (reimage initrd --ca, --auth-file) apply to every download and the report.
    const net = await bakedNet(o.configDir);
    // Every outcome's report leaves through stages/outcome.ts (the finish stage, or the catch below).
    const url = policy.reportUrl;
    const format = policy.reportFormat;
    deliver = await deliverTo(url, net, log, format);
    // A bundle URL is on no local disk: the target is chosen first, and seeds a chunked bundle (read only, before the point of no return).
    // When none can be chosen yet, the bundle still comes first (its trust is reported first) and the choice below says why.
    const targets = policy.targets;
    const early = isUrl(policy.bundle)
      ? await wholeDisks()
          .then((d) => selectTarget(targets, undefined, d))
          .catch(() => undefined)
      : undefined;
    // Its medium until it comes: a kept partition of that target the policy names (a refusal before the bundle is in keeps its report there).
    if (early && policy.mode !== 'plan') await urlOutbox(deliver, policy.keep, early.node, o.runBase, log);
    fetched = await o.bring(policy.bundle, {
      cleanup,
      trust: baked.trust,
      ...(net.ca ? { ca: net.ca } : {}),
      limits: { ...limitsAsFlags(policy), ...(net.authFile ? { authFile: net.authFile } : {}) },
      ...(o.signal ? { signal: o.signal } : {}),
      ...(early ? { seedTarget: early.node } : {}),
    });
    // The bundle's medium keeps the reports the endpoint did not take; what earlier runs kept there goes first.
    if (deliver && fetched.device) {
      deliver.medium = mediumPlace(fetched.device, policy.bundle, o.runBase, MEDIUM_OUTBOX);
      await sendKept(deliver, log);
    }
    const disk = early ?? (await selectTarget(policy.targets, fetched.device?.disk, await wholeDisks()));
    target = disk.name;
    log.info(`reimage: target ${disk.node} (serial ${disk.serial || '-'})`);
    const report = await runFlow(
      {
        bundle: fetched.dir,
        target: disk.node,
        ...(policy.retention ? { retain: policy.retention } : {}),
        noRetain: policy.noRetain,
        yes: policy.mode === 'auto',
        grow: policy.grow,
        verifyRaw: policy.verifyRaw,
        verifyWritten: policy.verifyWritten,
        // In the initramfs the target is the disk the firmware boots: its UEFI entry follows the new ESP.
        efiEntry: true,
        unmapped: policy.unmapped,
        ...(policy.fingerprint ? { fingerprint: policy.fingerprint } : {}),
        ...(policy.compatible ? { compatible: policy.compatible } : {}),
        allowDowngrade: policy.allowDowngrade,
        caps: { entryBytes: policy.maxEntryBytes ?? DEFAULT_CAPS.entryBytes, totalBytes: policy.maxRetainedBytes ?? DEFAULT_CAPS.totalBytes, entries: policy.maxEntries ?? DEFAULT_CAPS.entries },
        oldMounts: [],
        keepParts: policy.keep,
        reentryAttempts: policy.reentryAttempts,
        // A bundle read from a partition of the target: that partition is kept (stages/kept.ts).
        ...(fetched.device?.disk === disk.name ? { bundlePart: fetched.device.source } : {}),
        // Trusted keys are baked into the initrd next to config.json; no kernel argument changes them.
        trust: baked.trust,
        runBase: o.runBase,
        bundleInRam: true,
        ...(fetched.assembly ? { assembly: fetched.assembly } : {}),
        confirm: o.confirm,
        ...(o.signal ? { signal: o.signal } : {}),
        // The bundle's medium (a kept partition when it is on the target) and RAM; a rerun finds the set there.
        keep: bootPlaces(fetched.device, policy.bundle, o.runBase),
        bundleLocation: policy.bundle,
        keepInBundle: false,
        // From here on a crash must not reboot into a half-written disk.
        beforeWrite: () => setAction(o.runBase, afterWriteAction(policy)),
        ...(deliver ? { deliver } : {}),
      },
      log,
      policy.mode === 'plan',
    );
    await deliverOutcome(deliver, report, log);
    if (report.outcome === 'planned') return continueOrReboot(text, log);
    return { action: policy.after, code: EXIT.ok };
  } catch (e) {
    const d = describe(e);
    log.warn(`reimage failed: ${d.line}`);
    const doc = e instanceof ReimageError && e.report !== undefined ? e.report : o.failureDoc?.(e);
    // A refusal before the report's way was set up (a bad kernel argument, a policy the arguments would loosen, no bundle location, no trust): the fleet hears of it too.
    if (doc !== undefined) await deliverOutcome(deliver ?? (await lateDeliver(o.configDir, text, log)), doc, log);
    // Below 10 nothing was written: the old system boots again.
    if (d.code < EXIT.writeFailed) return { action: 'reboot', code: d.code };
    // The target will not boot: keep the log on the bundle's medium when it is another disk.
    if (fetched?.device && fetched.device.disk !== target) await saveLog(fetched.device.source, o.runBase, log);
    return { action: afterWriteAction(policy), code: d.code };
  } finally {
    await cleanup.runAll();
  }
}

// lateDeliver: the report's way from the baked policy alone, when the kernel
// command line asked for a reimage (rd.reimage, not =0) and the policy names
// an endpoint; undefined otherwise (an unarmed boot reports nothing).
async function lateDeliver(configDir: string, cmdline: string, log: Log): Promise<Deliver | undefined> {
  const armed = splitCmdline(cmdline).some((w) => w === 'rd.reimage' || (w.startsWith('rd.reimage=') && !['0', 'no'].includes(w.slice(11))));
  if (!armed) return undefined;
  const cfg = await loadConfig(configDir).catch(() => undefined);
  if (!cfg?.reportUrl) return undefined;
  return deliverTo(cfg.reportUrl, await bakedNet(configDir), log, cfg.reportFormat).catch((e: Error) => {
    log.warn(`the report of this refusal cannot be sent: ${e.message}`);
    return undefined;
  });
}

const exists = (f: string) =>
  access(f).then(
    () => true,
    () => false,
  );

// bakedNet: the site CA and credentials baked next to config.json (reimage initrd --ca, --auth-file), those that are there.
async function bakedNet(configDir: string): Promise<NetFlags> {
  const ca = join(configDir, CA_FILE);
  const authFile = join(configDir, AUTH_FILE);
  return { ...((await exists(ca)) ? { ca } : {}), ...((await exists(authFile)) ? { authFile } : {}) };
}

// afterWriteAction: what a failure past the point of no return leads to
// ("reboot" there means halt: the disk was invalidated and must not boot).
export function afterWriteAction(policy: { onFailure: Action | 'reboot' } | undefined): Action {
  const onFailure = policy?.onFailure ?? 'halt';
  return onFailure === 'reboot' ? 'halt' : onFailure;
}

// continueOrReboot: "continue" only when there is a root= to boot; an armed
// entry has none, and the generator's path without one ends in its emergency
// shell (or a wait for a root that never comes).
export function continueOrReboot(cmdline: string, log: Log): { action: Action; code: number } {
  if (splitCmdline(cmdline).some((w) => /^root=./.test(w))) return { action: 'continue', code: EXIT.ok };
  log.info('reimage: the kernel command line has no root= to continue to: rebooting instead (nothing was written)');
  return { action: 'reboot', code: EXIT.ok };
}

// setAction: the word the entry glue acts on should the binary end now.
async function setAction(runBase: string, action: Action): Promise<void> {
  await mkdir(runBase, { recursive: true });
  await writeFile(`${runBase}/action`, `${action}\n`);
}

// writeAction: the word the entry glue acts on, plus the log where it survives the run.
export async function writeAction(runBase: string, action: Action, log: Log): Promise<void> {
  await setAction(runBase, action);
  await mkdir('/run/initramfs', { recursive: true }).catch(() => {});
  await writeFile('/run/initramfs/reimage.log', log.lines().join('\n') + '\n').catch(() => {});
}

// startupMs: time from this process's exec to now, from the kernel's own
// accounting (/proc/self/stat start time against /proc/uptime; 10 ms ticks):
// how long the single binary takes to start inside the initramfs.
export async function startupMs(): Promise<number | undefined> {
  const [stat, uptime] = await Promise.all([readFile('/proc/self/stat', 'utf8').catch(() => ''), readFile('/proc/uptime', 'utf8').catch(() => '')]);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTicks = Number(fields[19]);
  const up = Number(uptime.split(' ')[0]);
  if (!Number.isFinite(startTicks) || !Number.isFinite(up) || !stat) return undefined;
  return Math.max(0, Math.round(up * 1000 - startTicks * 10));
}
