// `reimage initrd`: a reimage initrd for a chosen kernel, built by the
// system's dracut with our module, into an explicit file (never the system's
// own initrd). dracut looks for modules only under its base directory, so the
// build uses a private base: symlinks to the system's dracut plus our module.
// The binary must reach the initrd byte for byte (dracut strips executables,
// which corrupts a Node single-executable); this is checked after the build.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ReimageError, usageError } from '../errors.ts';
import { firstToolSync } from '../system/exec.ts';
import { dracutBuild, lsinitrdCopy, mkinitramfs, unmkinitramfsCopy } from '../system/tools.ts';
import { hashFile } from '../util/hash.ts';
import { loadConfig } from './config.ts';
import { checkNetworkModule, networkBuild, wantsNetwork, withBaked } from './network.ts';
import { lockdownArgs } from './lockdown.ts';
import type { Log } from '../util/log.ts';
import { loadKeyDir } from '../bundle/sign.ts';

const DRACUT_BASE = '/usr/lib/dracut';
export const INITRD_BIN = 'usr/lib/reimage/reimage';

// selfBinary: the running single executable (the file that goes into the initrd).
async function selfBinary(): Promise<string> {
  const sea = await import('node:sea').catch(() => undefined);
  if (sea?.isSea()) return process.execPath;
  const built = resolve('build/reimage');
  if (existsSync(built)) return built;
  throw usageError('reimage initrd needs the built binary: run `make bin` and use build/reimage');
}

// layout: the dracut module and entry glue next to the binary, in the build tree or an installed layout.
export function findLayout(bin: string): { module: string; glue: string } {
  const base = dirname(bin);
  const modules = [join(base, '../dracut-module/50reimage'), join(base, '../share/reimage/dracut-module/50reimage'), join(base, 'dracut-module/50reimage'), `${DRACUT_BASE}/modules.d/50reimage`];
  const glues = [join(base, '../initramfs'), join(base, '../share/reimage/initramfs'), join(base, 'initramfs')];
  const module = modules.map((m) => resolve(m)).find((m) => existsSync(join(m, 'module-setup.sh')));
  const glue = glues.map((g) => resolve(g)).find((g) => existsSync(join(g, 'reimage-entry.sh')));
  if (!module || !glue) throw new ReimageError('environment', `the dracut module or the initramfs glue is not next to ${bin}: looked in ${[...modules, ...glues].join(', ')}`);
  return { module, glue };
}

const LVM_BINS = ['/usr/sbin/lvm', '/sbin/lvm'];

export const GENERATORS = ['dracut', 'initramfs-tools'] as const;
export type Generator = (typeof GENERATORS)[number];

export type InitrdOptions = { out: string; kver?: string; config?: string; generator?: Generator; noSystemd?: boolean; add?: readonly string[]; network?: boolean; ca?: string; authFile?: string };

type Build = { kver: string; out: string; bin: string; module: string; glue: string; env: Record<string, string>; noSystemd: boolean; add: readonly string[] };

// buildInitrd: the initrd at OUT, and what it trusts (said in `reimage initrd`'s output).
export async function buildInitrd(o: InitrdOptions, log: Log): Promise<{ out: string; trust: string }> {
  const kver = o.kver ?? release();
  if (!existsSync(`/lib/modules/${kver}`)) throw usageError(`kernel ${kver} has no /lib/modules/${kver}: install its modules or pick another with --kver`);
  if (o.config && !existsSync(o.config)) throw usageError(`--config ${o.config} does not exist: give a directory with config.json (and optionally retention.list)`);
  const generator = o.generator ?? (existsSync(DRACUT_BASE) ? 'dracut' : 'initramfs-tools');
  if (o.noSystemd && generator !== 'dracut') throw usageError('--no-systemd applies to dracut only (an initramfs-tools initrd has no systemd): drop it or use --generator dracut');
  const add = o.add ?? [];
  if (add.length && generator !== 'dracut') throw usageError(`--add ${add[0]} names a dracut module, but the generator is ${generator}: drop it or use --generator dracut`);
  for (const m of add) if (!/^[a-z0-9][a-z0-9_-]*$/.test(m)) throw usageError(`--add ${JSON.stringify(m)} is not a dracut module name: give one such as dm or network`);
  const trust = await initrdTrust(o.config);
  const bin = await selfBinary();
  const { module, glue } = findLayout(bin);
  const policy = o.config ? await loadConfig(o.config) : undefined;
  const net = networkBuild(generator, wantsNetwork(o.network === true, policy ?? { network: false }));
  if (generator === 'dracut') checkNetworkModule(join(DRACUT_BASE, 'modules.d'), net.add.length > 0);
  if (o.ca && !o.config) throw usageError('--ca bakes a CA next to the policy: give --config DIR too');
  if (o.authFile && !o.config) throw usageError('--auth-file bakes credentials next to the policy: give --config DIR too');
  const config = o.config && (o.ca || o.authFile) ? await withBaked(o.config, { ...(o.ca ? { ca: o.ca } : {}), ...(o.authFile ? { authFile: o.authFile } : {}) }) : undefined;
  // Baked kernel arguments: the shell lockdown (empty when the policy allows a shell), then the network's.
  const baked = [...lockdownArgs(policy?.allowShell ?? false), ...net.args].join(' ');
  const env = { REIMAGE_BIN: bin, REIMAGE_GLUE: glue, REIMAGE_LOCKDOWN: baked, ...net.env, ...(o.config ? { REIMAGE_CONFIG: resolve(config?.dir ?? o.config) } : {}) };
  // dracut's lvm module (lvm, its udev rules, dm) whenever the build host has lvm2: cheap, and needed for images on LVM.
  const lvm = generator === 'dracut' && LVM_BINS.some((p) => existsSync(p)) ? ['lvm'] : [];
  const b: Build = { kver, out: resolve(o.out), bin, module, glue, env, noSystemd: o.noSystemd === true, add: [...new Set([...add, ...net.add, ...lvm])] };
  try {
    await (generator === 'dracut' ? withDracut(b, log) : withInitramfsTools(b, log));
  } finally {
    await config?.remove();
  }
  await log.step('check the binary inside the initrd is byte-identical', () => checkBinary(b.out, bin));
  // An initrd that holds credentials is readable by root alone (/boot is often world-readable).
  if (o.authFile) await chmod(b.out, 0o600);
  return { out: b.out, trust };
}

// initrdTrust: the config directory is validated as the initrd will read it,
// and an initrd that would refuse every bundle (no key, no allowUnsigned) is
// not built. Returns what it trusts, in words.
async function initrdTrust(config: string | undefined): Promise<string> {
  const fix = 'give --config DIR holding config.json and the fleet\'s .pub key (reimage keygen), or "allowUnsigned": true in config.json';
  if (!config) throw usageError(`an initrd without --config trusts no signing key and would refuse every bundle: ${fix}`);
  // Every file of the directory goes into the initrd: a private key there would be copied onto every machine.
  for (const f of await readdir(config).catch(() => [] as string[])) {
    const text = await readFile(join(config, f), 'utf8').catch(() => '');
    if (/PRIVATE KEY-----|^untrusted comment: .*secret key/m.test(text))
      throw usageError(`--config ${config} holds a private key (${f}), which would be baked into the initrd: move it out and keep only the .pub`);
  }
  const c = await loadConfig(config);
  const keys = (await loadKeyDir(config)).map((k) => k.id);
  if (keys.length && c.allowUnsigned)
    throw usageError(`--config ${config} holds trusted keys (${keys.join(', ')}) and sets allowUnsigned: signatures would still be required; remove allowUnsigned or the keys`);
  if (!keys.length && !c.allowUnsigned) throw usageError(`--config ${config} has no *.pub key and does not set allowUnsigned, so the initrd would refuse every bundle: ${fix}`);
  return keys.length ? `bundles must be signed by key ${keys.join(' or ')}` : 'no trusted key: accepts unsigned bundles (allowUnsigned)';
}

// Network modules dracut-network brings: with it installed, a --no-hostonly
// build takes them all (qemu-net pulls in network; without systemd, network
// then wants ifcfg, which Debian cannot install, and the build fails). An
// initrd that fetches no bundle by URL leaves them out.
const NETWORK_MODULES = ['qemu-net', 'network', 'network-legacy', 'network-manager', 'ifcfg'];

// omitted: the dracut modules a build leaves out.
function omitted(b: Build): string[] {
  const wantsNet = b.add.some((m) => NETWORK_MODULES.includes(m));
  return ['plymouth', ...(b.noSystemd ? ['systemd'] : []), ...(wantsNet ? [] : NETWORK_MODULES)];
}

// withDracut: dracut with a private base directory that adds our module.
async function withDracut(b: Build, log: Log): Promise<void> {
  if (!existsSync(DRACUT_BASE)) throw new ReimageError('environment', 'dracut is not installed: install dracut (Debian: dracut-core) and try again');
  const { kver, out, module } = b;
  const base = await mkdtemp(join(tmpdir(), 'reimage-dracut-'));
  try {
    for (const e of await readdir(DRACUT_BASE)) if (e !== 'modules.d') await symlink(join(DRACUT_BASE, e), join(base, e));
    await mkdir(join(base, 'modules.d'));
    for (const e of await readdir(join(DRACUT_BASE, 'modules.d'))) if (!e.endsWith('reimage')) await symlink(join(DRACUT_BASE, 'modules.d', e), join(base, 'modules.d', e));
    await symlink(module, join(base, 'modules.d', '50reimage'));
    await log.step(`build the initrd for kernel ${kver} with dracut`, () =>
      // Without systemd, the module installs a pre-mount hook instead of its unit.
      dracutBuild(['--force', '--quiet', '--no-hostonly', '--no-hostonly-cmdline', '--add', ['reimage', ...b.add].join(' '), '--omit', omitted(b).join(' '), '--kver', kver, out], {
        dracutbasedir: base,
        ...b.env,
      }),
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

// withInitramfsTools: mkinitramfs with a private configuration directory
// (-d): our hook and init-premount script, never the host's /etc/initramfs-tools.
async function withInitramfsTools(b: Build, log: Log): Promise<void> {
  const conf = await mkdtemp(join(tmpdir(), 'reimage-itools-'));
  try {
    const src = join(b.glue, 'initramfs-tools');
    await cp(join(src, 'hooks'), join(conf, 'hooks'), { recursive: true });
    await cp(join(src, 'scripts'), join(conf, 'scripts'), { recursive: true });
    await mkdir(join(conf, 'conf.d'));
    await writeFile(join(conf, 'modules'), '');
    await writeFile(join(conf, 'initramfs.conf'), 'MODULES=most\nBUSYBOX=y\nCOMPRESS=zstd\nRUNSIZE=10%\nFSTYPE=auto\n');
    await log.step(`build the initrd for kernel ${b.kver} with initramfs-tools`, () => mkinitramfs(conf, b.out, b.kver, b.env));
  } finally {
    await rm(conf, { recursive: true, force: true });
  }
}

// checkBinary: the binary's sha256 inside the initrd equals the build's.
export async function checkBinary(initrd: string, bin: string): Promise<void> {
  const want = (await hashFile(bin)).sha256;
  const tmp = await mkdtemp(join(tmpdir(), 'reimage-check-'));
  try {
    const copy = join(tmp, 'reimage');
    if (firstToolSync(['lsinitrd', 'unmkinitramfs']) === 'lsinitrd') {
      await lsinitrdCopy(initrd, INITRD_BIN, copy);
    } else {
      await unmkinitramfsCopy(initrd, INITRD_BIN, join(tmp, 'x'), copy);
    }
    const got = createHash('sha256')
      .update(await readFile(copy))
      .digest('hex');
    if (got !== want) throw new ReimageError('environment', `the binary inside ${initrd} has sha256 ${got}, not ${want} (the build's): dracut altered it; report this with your dracut version`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
