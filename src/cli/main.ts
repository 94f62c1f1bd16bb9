// The entry point: parses the command line, runs one command, prints, and
// picks the exit code. The only place that writes to stdout or exits.
import { mediumPlace } from '../boot/keep.ts';
import { isUrl } from '../util/url.ts';
import { urlOutbox } from '../stages/keep.ts';
import { createInterface } from 'node:readline/promises';
import { pack } from '../bundle/pack.ts';
import { MAX_DECODED } from '../bundle/input.ts';
import { CODECS, type CodecName } from '../bundle/manifest.ts';
import { loadBundle } from '../bundle/read.ts';
import { keygen, loadTrusted } from '../bundle/sign.ts';
import { verifyPacked, verifyRaw } from '../bundle/verify.ts';
import { UNMAPPED, type Unmapped } from '../bmap/format.ts';
import { EXIT, ReimageError, describe, targetError, usageError } from '../errors.ts';
import { catchSignals } from '../util/interrupt.ts';
import { dirPlace } from '../retention/archive.ts';
import { restoreFromArchive } from '../retention/from-archive.ts';
import { join } from 'node:path';
import { fingerprint } from '../target/fingerprint.ts';
import { inspect } from '../target/sysfs.ts';
import { writeFile } from 'node:fs/promises';
import { runFlow } from '../stages/index.ts';
import { boot, defaultBootOptions, writeAction } from '../boot/boot.ts';
import { buildInitrd, GENERATORS, type Generator } from '../boot/initrd.ts';
import { vmTest } from '../vmtest/run.ts';
import { junitXml } from '../vmtest/junit.ts';
import { vmBootOptions } from './vmtest.ts';
import { arm, disarm } from '../arm/index.ts';
import { makeKit } from '../arm/kit.ts';
import { capture } from '../capture/index.ts';
import { createLog } from '../util/log.ts';
import { VERSION } from '../version.ts';
import { parseSize } from '../util/bytes.ts';
import { DEFAULT_CAPS } from '../retention/scan.ts';
import { ASSEMBLED_FILE, type ChunkOptions, parseChunkSize } from '../bundle/chunked.ts';
import { DEFAULT_SIZES } from '../chunks/chunker.ts';
import { assembleCommand, describeAssembly, seedsFrom } from './assemble.ts';
import { fetchSeededBundle } from '../sources/seeded.ts';
import type { Seeding } from '../sources/assembled.ts';
import { CHUNK_CACHE, dropChunkCache } from '../sources/cache.ts';
import { targetSeeds } from '../sources/kept.ts';
import { COMMANDS, helpText, type CommandName, type Flag } from './commands.ts';
import { bashCompletion } from './completion.ts';
import { manPage } from './man.ts';
import { parse, type Values } from './args.ts';
import { failureDoc, successDoc, toJson } from './result.ts';
import { renderPlan } from './plan.ts';
import { checkTargetPath } from './target.ts';
import { withProgress } from '../util/progress.ts';
import { checkRam } from '../stages/budget.ts';
import { createCleanup } from '../util/cleanup.ts';
import { fetchBundle } from '../sources/fetch.ts';
import { netLimitFlags, type NetFlags } from '../net/options.ts';
import { REPORT_FORMATS, type ReportFormat } from '../net/hawkbit.ts';
import { tmpdir } from 'node:os';
import { ramBring, withBundle } from './bundle.ts';
import { deliverTo } from '../net/deliver.ts';
import { deliver as deliverOutcome, localMedium, MEDIUM_OUTBOX, sendKept } from '../stages/outcome.ts';

const str = (v: Values, k: string, cmd: string): string => {
  const x = v[k];
  if (typeof x !== 'string' || !x) throw usageError(`reimage ${cmd} needs --${k}: see reimage ${cmd} --help`);
  return x;
};
const opt = (v: Values, k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
// given: the string flags of NAMES (option key -> flag) that were given, as optional properties.
const given = <K extends string>(v: Values, names: Record<K, string>): Partial<Record<K, string>> =>
  Object.fromEntries(Object.entries<string>(names).flatMap(([k, flag]) => (opt(v, flag) ? [[k, opt(v, flag)]] : []))) as Partial<Record<K, string>>;
// bootSpec: what arm and kit boot: the bundle, the boot directory, and the target, initrd, config and kernel when given.
const bootSpec = (v: Values, name: string) => ({
  bundle: str(v, 'bundle', name),
  bootDir: opt(v, 'boot-dir') ?? '/boot',
  ...given(v, { target: 'target', initrd: 'initrd', config: 'config', kver: 'kver', cmdline: 'cmdline' }),
});
const size = (v: Values, k: string, fallback: number): number => {
  const text = opt(v, k);
  if (text === undefined) return fallback;
  const n = parseSize(text);
  if (n === undefined) throw usageError(`--${k} ${text} is not a size: write e.g. --${k} 512M`);
  return n;
};
const count = (v: Values, k: string, fallback: number): number => {
  const text = opt(v, k);
  if (text === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) throw usageError(`--${k} ${text} is not a positive whole number: write e.g. --${k} 200000`);
  return Number(text);
};
const list = (v: Values, k: string) => (Array.isArray(v[k]) ? (v[k] as string[]) : []);

// chunkFlags: pack's --chunks options (the others need --chunks).
function chunkFlags(v: Values): { chunks?: ChunkOptions } {
  const extra = ['chunk-store', 'chunk-size', 'chunk-index', 'delta-from'].filter((k) => opt(v, k) !== undefined || list(v, k).length);
  if (!v.chunks) {
    if (extra.length) throw usageError(`--${extra[0]} needs --chunks: add --chunks to write a chunk index`);
    return {};
  }
  const store = opt(v, 'chunk-store');
  const index = opt(v, 'chunk-index');
  const sizes = opt(v, 'chunk-size') ? parseChunkSize(opt(v, 'chunk-size')!) : DEFAULT_SIZES;
  const deltaFrom = list(v, 'delta-from');
  return { chunks: { sizes, ...(store ? { store } : {}), ...(index ? { importIndex: index } : {}), ...(deltaFrom.length ? { deltaFrom } : {}) } };
}

async function askYes(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw usageError('confirmation needed but stdin is not a terminal: nothing was written; pass --yes to reimage without asking');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim().toLowerCase() === 'yes';
  } catch (e) {
    // Ctrl-C or the end of input at the prompt: a refusal, not a bug.
    if ((e as Error).name === 'AbortError' || (e as NodeJS.ErrnoException).code === 'ABORT_ERR') return false;
    throw e;
  } finally {
    rl.close();
  }
}

// What the entry knows of the command while it runs, for the JSON document of a failure.
type State = { command: string; phase: string; json: boolean };

async function main(argv: string[], st: State): Promise<number> {
  const [cmd, ...rest] = argv;
  st.command = cmd ?? '';
  st.json = argv.includes('--json');
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(helpText());
    return cmd ? EXIT.ok : EXIT.usage;
  }
  if (cmd === '--version' || cmd === '-V') {
    process.stdout.write(`reimage ${VERSION}\n`);
    return EXIT.ok;
  }
  if (!(cmd in COMMANDS)) throw usageError(`unknown command "${cmd}": use one of ${Object.keys(COMMANDS).join(', ')} (reimage --help)`);
  const name = cmd as CommandName;
  st.command = name;
  st.json = 'json' in COMMANDS[name].flags && rest.includes('--json');
  const { values: v, positionals } = parse(name, rest);
  if (v.help) {
    process.stdout.write(helpText(name));
    return EXIT.ok;
  }
  for (const [k, f] of Object.entries(COMMANDS[name].flags as Record<string, Flag>)) if (f.required) str(v, k, name);
  const expected = COMMANDS[name].positionals.length;
  if (positionals.length !== expected) {
    throw usageError(
      `reimage ${name} takes ${expected ? COMMANDS[name].positionals.join(' ') : 'no positional arguments'} but got ${positionals.length ? positionals.join(' ') : 'none'}: see reimage ${name} --help`,
    );
  }
  const json = v.json === true;
  st.json = json;
  st.phase = name;
  const log = createLog(process.stderr);
  const out = (doc: object, line: string) => process.stdout.write(json ? toJson(doc) : line + '\n');
  switch (name) {
    case 'pack': {
      const codec = opt(v, 'codec') ?? 'zstd';
      if (!(CODECS as readonly string[]).includes(codec)) throw usageError(`--codec ${codec} is not supported: use one of ${CODECS.join(', ')}`);
      const m = await pack(
        {
          image: positionals[0]!,
          out: str(v, 'out', name),
          codec: codec as CodecName,
          ...(opt(v, 'retain') ? { retain: opt(v, 'retain')! } : {}),
          ...(opt(v, 'sign') ? { sign: opt(v, 'sign')! } : {}),
          ...(opt(v, 'compatible') ? { compatible: opt(v, 'compatible')! } : {}),
          ...(list(v, 'keep').length ? { keep: list(v, 'keep') } : {}),
          ...(opt(v, 'image-version') ? { version: opt(v, 'image-version')! } : {}),
          ...(opt(v, 'bmap') ? { bmap: opt(v, 'bmap')! } : {}),
          maxDecoded: size(v, 'max-size', MAX_DECODED),
          ...chunkFlags(v),
          mounts: list(v, 'mount'),
        },
        log,
      );
      out(
        successDoc(name, { manifest: m, bundle: str(v, 'out', name) }),
        `bundle written to ${str(v, 'out', name)}: ${m.image.file} (${m.image.size} bytes, ${m.image.codec}), raw ${m.raw.size} bytes sha256 ${m.raw.sha256}`,
      );
      return EXIT.ok;
    }
    case 'assemble': {
      const a = { bundle: str(v, 'bundle', name), out: str(v, 'out', name), seeds: list(v, 'seed'), seedIndexes: list(v, 'seed-index'), trust: list(v, 'trust') };
      const r = await assembleCommand({ ...a, ...(opt(v, 'store') ? { store: opt(v, 'store')! } : {}), jobs: count(v, 'jobs', 8), dryRun: v['dry-run'] === true }, log);
      out(r.report, r.line);
      return EXIT.ok;
    }
    case 'verify': {
      const trusted = await loadTrusted(list(v, 'trust'));
      // A URL is brought into a temporary directory first (the manifest and signature checked before the rest comes).
      return withSignals(log, (signal) =>
        withBundle(str(v, 'bundle', name), { log, signal, runBase: tmpdir(), net: netFlags(v), trusted }, async (src) => {
          const b = await loadBundle(src.dir, trusted);
          await log.step('check the compressed image', () => withProgress('checking', b.manifest.image.size, log, (tick) => verifyPacked(b.imagePath, b.manifest, tick)));
          await log.step('check the raw image', () => withProgress('decoding', b.manifest.raw.size, log, (tick) => verifyRaw(b.imagePath, b.manifest, b.bmap, signal, tick)));
          const signed = b.signedBy ? `, signed by trusted key ${b.signedBy}` : '';
          out(
            successDoc(name, { bundle: src.where, image: b.manifest.image, raw: b.manifest.raw, signedBy: b.signedBy }),
            `bundle ${src.where} is valid: ${b.manifest.image.codec}, ${b.manifest.image.size} bytes, raw ${b.manifest.raw.size} bytes, sha256 ok${signed}`,
          );
          return EXIT.ok;
        }),
      );
    }
    case 'fetch': {
      const trusted = await loadTrusted(list(v, 'trust'));
      const dest = str(v, 'out', name);
      const cleanup = createCleanup(log);
      if (list(v, 'seed').length || list(v, 'seed-index').length || v['dry-run'] === true) {
        const seeds = await seedsFrom(list(v, 'seed'), list(v, 'seed-index'));
        const dryRun = v['dry-run'] === true;
        const env = { log, cleanup, runBase: runBase(), net: netFlags(v), trusted, seeds, jobs: count(v, 'jobs', 8), dryRun };
        const r = await withSignals(log, (signal) => fetchSeededBundle(positionals[0]!, dest, { ...env, signal }).finally(() => cleanup.runAll()));
        const line = describeAssembly(r.report, join(r.out, ASSEMBLED_FILE), dryRun, log);
        out(successDoc(name, { from: r.where, out: r.out, dryRun, index: r.index, signedBy: r.signedBy, assembly: r.report }), `${line}${r.signedBy ? `, signed by trusted key ${r.signedBy}` : ''}`);
        return EXIT.ok;
      }
      const r = await withSignals(log, (signal) =>
        fetchBundle(positionals[0]!, dest, { log, cleanup, runBase: runBase(), net: netFlags(v), signal, trusted, tty: process.stderr.isTTY === true }).finally(() => cleanup.runAll()),
      );
      const signed = r.signedBy ? `, signed by trusted key ${r.signedBy}` : '';
      out(
        successDoc(name, { from: r.where, out: r.out, files: r.files, bytes: r.bytes, fetched: r.fetched, reused: r.reused, signedBy: r.signedBy }),
        `bundle ${r.where} fetched into ${r.out}: ${r.files} files, ${r.bytes} bytes checked (${r.fetched} bytes downloaded now, ${r.reused} files already on hand)${signed}`,
      );
      return EXIT.ok;
    }
    case 'capture': {
      const codec = opt(v, 'codec') ?? 'zstd';
      if (!(CODECS as readonly string[]).includes(codec)) throw usageError(`--codec ${codec} is not supported: use one of ${CODECS.join(', ')}`);
      const c = await capture(
        {
          disk: str(v, 'disk', name),
          key: str(v, 'key', name),
          keep: list(v, 'keep'),
          recovery: v.recovery === true,
          codec: codec as CodecName,
          ...Object.fromEntries((['out', 'kernel', 'initrd', 'config', 'retain'] as const).flatMap((k) => (opt(v, k) ? [[k, opt(v, k)!]] : []))),
        },
        log,
      );
      out(
        successDoc(name, { bundle: c.where, manifest: c.manifest, kept: c.kept, loaders: c.loaders }),
        `factory bundle written to ${c.where}: ${c.manifest.image.file} (${c.manifest.image.size} bytes), raw ${c.manifest.raw.size} bytes; kept partitions ${c.kept.join(', ') || 'none'}${c.loaders.length ? `; "Restore factory state" entry for ${c.loaders.join(' and ')}` : ''}`,
      );
      return EXIT.ok;
    }
    case 'fingerprint': {
      await checkTargetPath(positionals[0]!, 'device');
      const d = await inspect(positionals[0]!);
      if (!d || d.isPartition) throw targetError(`${positionals[0]} is not a whole-disk block device: give a disk such as /dev/sda`);
      const text = JSON.stringify(await fingerprint(d), null, 2) + '\n';
      const file = opt(v, 'out');
      if (file) await writeFile(file, text);
      process.stdout.write(file ? `fingerprint of ${d.node} written to ${file}\n` : text);
      return EXIT.ok;
    }
    case 'man':
      process.stdout.write(manPage());
      return EXIT.ok;
    case 'completion':
      process.stdout.write(bashCompletion());
      return EXIT.ok;
    case 'keygen': {
      const k = await keygen(str(v, 'out', name));
      process.stdout.write(`key ${k.id}: private ${k.key} (keep it secret), public ${k.pub} (bake it into the initrd config), the same public key for minisign -V ${k.minisignPub}\n`);
      return EXIT.ok;
    }
    case 'boot': {
      const o = {
        ...defaultBootOptions,
        runBase: process.env.REIMAGE_RUNDIR || defaultBootOptions.runBase,
        ...(opt(v, 'cmdline') ? { cmdline: opt(v, 'cmdline')! } : {}),
        ...(opt(v, 'config') ? { configDir: opt(v, 'config')! } : {}),
        confirm: askYes,
        failureDoc: (e: unknown) => failureDoc('run', 'preflight', e),
      };
      const r = await withSignals(log, (signal) => boot({ ...o, bring: ramBring(log, o.runBase), signal }, log));
      await writeAction(o.runBase, r.action, log);
      log.info(`reimage: next: ${r.action}`);
      return r.code;
    }
    case 'initrd': {
      const generator = opt(v, 'generator');
      if (generator !== undefined && !(GENERATORS as readonly string[]).includes(generator)) throw usageError(`--generator ${generator} is not supported: use ${GENERATORS.join(' or ')}`);
      const out = await buildInitrd(
        {
          out: str(v, 'out', name),
          ...(opt(v, 'kver') ? { kver: opt(v, 'kver')! } : {}),
          ...(opt(v, 'config') ? { config: opt(v, 'config')! } : {}),
          ...(generator ? { generator: generator as Generator } : {}),
          noSystemd: v['no-systemd'] === true,
          add: list(v, 'add'),
          network: v.network === true,
          ...(opt(v, 'ca') ? { ca: opt(v, 'ca')! } : {}),
          ...(opt(v, 'auth-file') ? { authFile: opt(v, 'auth-file')! } : {}),
        },
        log,
      );
      process.stdout.write(`initrd written to ${out.out}; ${out.trust}\n`);
      return EXIT.ok;
    }
    case 'arm': {
      const line = await arm(bootSpec(v, name), log);
      process.stdout.write(`armed: ${line}\n`);
      return EXIT.ok;
    }
    case 'kit': {
      const line = await makeKit({ part: str(v, 'part', name), ...bootSpec(v, name), ...given(v, { esp: 'esp' }) }, log);
      process.stdout.write(`${line}\n`);
      return EXIT.ok;
    }
    case 'disarm': {
      process.stdout.write(`disarmed: ${await disarm(opt(v, 'boot-dir') ?? '/boot', log)}\n`);
      return EXIT.ok;
    }
    case 'vm-test': {
      const mem = opt(v, 'mem');
      if (mem !== undefined && !/^\d+$/.test(mem)) throw usageError(`--mem ${mem} is not a number of MiB: write e.g. --mem 2048`);
      const boot = vmBootOptions(v);
      const t0 = Date.now();
      const verdict = await vmTest(
        {
          disk: str(v, 'disk', name),
          bundle: str(v, 'bundle', name),
          ...(opt(v, 'kernel') ? { kernel: opt(v, 'kernel')! } : {}),
          ...(opt(v, 'initrd') ? { initrd: opt(v, 'initrd')! } : {}),
          ...(mem ? { memMiB: Number(mem) } : {}),
          ...(opt(v, 'keep') ? { keep: opt(v, 'keep')! } : {}),
          ...boot,
        },
        log,
      );
      const junit = opt(v, 'junit');
      // The console lines that tell why: the reimage's, then the booted result's.
      const consoleTail = [...verdict.serialTail, ...(verdict.boot?.serialTail ?? [])];
      if (junit) await writeFile(junit, junitXml(str(v, 'bundle', name), { ...verdict, serialTail: consoleTail }, (Date.now() - t0) / 1000));
      out(
        verdict.pass ? successDoc(name, verdict) : { ...failureDoc(name, name, new ReimageError('vmTest', `vm-test failed: ${verdict.reason}`)), ...verdict },
        `vm-test ${verdict.pass ? 'PASS' : 'FAIL'}: ${verdict.reason}\n${(verdict.boot?.serialTail ?? verdict.serialTail).map((l) => `  | ${l}`).join('\n')}`,
      );
      return verdict.pass ? EXIT.ok : EXIT.vmTest;
    }
    case 'run':
    case 'plan': {
      const o = runOptions(v, name);
      st.phase = 'preflight';
      // Every outcome's report leaves through stages/outcome.ts: a run's finish stage sends it (or keeps it in the new system),
      // every other ending here (kept on the bundle's medium when the endpoint does not take it).
      const deliver = await deliverTo(opt(v, 'report-url'), netFlags(v), log, reportFormat(opt(v, 'report-format')));
      // A local bundle directory is the medium: what earlier runs kept there goes first.
      if (deliver) deliver.medium = await localMedium(o.bundle, o.target, log);
      await sendKept(deliver, log);
      const failed = async (e: unknown): Promise<never> => {
        // The --json document is sent: the flow's report with the error described in full, or (a failure
        // before the flow began, e.g. the bundle could not be fetched: exit 9) the document alone.
        const doc = failureDoc(name, st.phase, e);
        // The document printed for --json is then the one sent.
        if (e instanceof ReimageError) e.report = doc;
        await deliverOutcome(deliver, doc, log);
        throw e;
      };
      await checkTargetPath(o.target, 'target').catch(failed);
      const trusted = await loadTrusted(o.trust).catch(failed);
      // A URL (or any source that cannot be read in place) is brought into RAM first, manifest and signature checked before the rest comes.
      // A chunked bundle URL is assembled from the target disk (read only, before anything is written) and any --seed.
      const extra = await seedsFrom(list(v, 'seed'), list(v, 'seed-index'));
      const seeding: Seeding = { seeds: async () => [...(await targetSeeds(o.target, o.runBase, log)), ...extra], jobs: count(v, 'jobs', 8), cache: join(o.runBase, CHUNK_CACHE) };
      const report = await withSignals(log, async (signal) => {
        // A bundle by URL has no medium: a kept partition of the target named by --keep keeps a report from here on.
        if (name === 'run' && isUrl(o.bundle)) await urlOutbox(deliver, o.keepParts, o.target, o.runBase, log);
        return withBundle(o.bundle, { log, signal, runBase: o.runBase, net: netFlags(v), trusted, ram: (n) => checkRam(n), seeding }, async (src) => {
          // A bundle read from a partition: that partition is the medium.
          if (deliver && src.device) {
            deliver.medium = mediumPlace(src.device, o.bundle, o.runBase, MEDIUM_OUTBOX);
            await sendKept(deliver, log);
          }
          return runFlow(
            {
              ...o,
              bundle: src.dir,
              bundleInRam: src.inRam,
              signal,
              ...(deliver ? { deliver } : {}),
              ...(src.assembly ? { assembly: src.assembly } : {}),
              bundleLocation: o.bundle,
              // A bundle read from a partition (a device source): kept when that is on the target, and a lasting place for the retained set.
              ...(src.device ? { bundlePart: src.device.source, keep: [mediumPlace(src.device, o.bundle, o.runBase), ...o.keep] } : {}),
            },
            log,
            name === 'plan',
          ).then(async (r) => {
            // The chunks downloaded stay for a rerun (or the run after a plan) until the image is written.
            if (name === 'run') await dropChunkCache(seeding.cache);
            return r;
          });
        }).then(async (r) => {
          await deliverOutcome(deliver, r, log);
          return r;
        }, failed);
      });
      out(report, name === 'plan' ? renderPlan(report).trimEnd() : `reimage finished: ${report.outcome}`);
      return EXIT.ok;
    }
    case 'restore': {
      const r = await withSignals(log, () => restoreFromArchive(str(v, 'from', name), str(v, 'root', name), log));
      out(successDoc(name, r), `restored ${r.entries.length} saved entries into ${str(v, 'root', name)}`);
      return EXIT.ok;
    }
  }
}

const runBase = () => process.env.REIMAGE_RUNDIR || '/run/reimage';

const netFlags = (v: Values): NetFlags => ({
  ...(opt(v, 'ca') ? { ca: opt(v, 'ca')! } : {}),
  ...(opt(v, 'auth-file') ? { authFile: opt(v, 'auth-file')! } : {}),
  ...netLimitFlags({ stallTimeout: opt(v, 'stall-timeout'), deadline: opt(v, 'deadline'), retries: opt(v, 'retries') }),
});

function runOptions(v: Values, name: CommandName) {
  const runBase = process.env.REIMAGE_RUNDIR || '/run/reimage';
  return {
    bundle: str(v, 'bundle', name),
    target: str(v, 'target', name),
    ...(opt(v, 'retain') ? { retain: opt(v, 'retain')! } : {}),
    noRetain: noRetainFlag(v),
    yes: v.yes === true,
    grow: v.grow === true,
    verifyRaw: verifyRawFlag(v),
    verifyWritten: v['verify-written'] === true,
    efiEntry: v['efi-entry'] === true,
    unmapped: unmappedFlag(opt(v, 'unmapped')),
    ...(opt(v, 'fingerprint') ? { fingerprint: opt(v, 'fingerprint')! } : {}),
    ...(opt(v, 'compatible') ? { compatible: opt(v, 'compatible')! } : {}),
    allowDowngrade: v['allow-downgrade'] === true,
    caps: { entryBytes: size(v, 'max-entry-size', DEFAULT_CAPS.entryBytes), totalBytes: size(v, 'max-retained', DEFAULT_CAPS.totalBytes), entries: count(v, 'max-entries', DEFAULT_CAPS.entries) },
    trust: list(v, 'trust'),
    oldMounts: list(v, 'old-mount'),
    keepParts: list(v, 'keep'),
    runBase,
    confirm: askYes,
    keep: [...list(v, 'keep-dir').map((d) => dirPlace(join(d, 'reimage-retained'), true)), dirPlace(join(runBase, 'retained'), false)],
    keepInBundle: true,
  };
}

function verifyRawFlag(v: Values): boolean | undefined {
  if (v['verify-raw'] === true && v['no-verify-raw'] === true) throw usageError('--verify-raw and --no-verify-raw contradict each other: give one');
  return v['verify-raw'] === true ? true : v['no-verify-raw'] === true ? false : undefined;
}

function noRetainFlag(v: Values): boolean {
  if (v['no-retain'] === true && opt(v, 'retain')) throw usageError(`--retain ${opt(v, 'retain')} and --no-retain contradict each other: give one`);
  return v['no-retain'] === true;
}

// withSignals: FN run with SIGINT/SIGTERM/SIGHUP caught (they stop the flow at its next safe point).
async function withSignals<T>(log: ReturnType<typeof createLog>, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const intr = catchSignals(log.warn);
  try {
    return await fn(intr.signal);
  } finally {
    intr.dispose();
  }
}

// If the event loop ever drains with work unfinished, the exit code says so.
process.exitCode = EXIT.internal;
// A closed pipe or a hung-up terminal must not kill a run (after the point of
// no return least of all): output that cannot be delivered is dropped, and the
// flow goes on to its own end, exit code and cleanup.
for (const s of [process.stdout, process.stderr]) s.on('error', () => {});
const state: State = { command: '', phase: 'usage', json: false };
main(process.argv.slice(2), state).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const d = describe(err);
    // --json: a failure prints its document too (the run's report when the flow made one).
    if (state.json) process.stdout.write(toJson(failureDoc(state.command, state.phase, err)));
    process.stderr.write(`reimage: ${d.line}\n`);
    if (d.internal && process.env.REIMAGE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = d.code;
  },
);

function reportFormat(value: string | undefined): ReportFormat {
  if (value === undefined) return 'reimage';
  if (!(REPORT_FORMATS as readonly string[]).includes(value)) throw usageError(`--report-format ${value} is not a format: use one of ${REPORT_FORMATS.join(', ')}`);
  return value as ReportFormat;
}

function unmappedFlag(value: string | undefined): Unmapped {
  if (value === undefined) return 'zero';
  if (!(UNMAPPED as readonly string[]).includes(value)) throw usageError(`--unmapped ${value} is not a policy: use one of ${UNMAPPED.join(', ')}`);
  return value as Unmapped;
}
