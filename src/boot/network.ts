// A reimage initrd that fetches its bundle over the network
// (rd.reimage.bundle=https://…): the generator's own network code brings
// the link up before reimage runs (dracut's network module, initramfs-tools'
// configure_networking), and a site CA and credentials can be baked in. Asked for by
// `reimage initrd --network`, by the policy (`"network": true`), or implied
// by a baked bundle URL.
import { isUrl } from '../util/url.ts';
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { ReimageError } from '../errors.ts';
import { loadNetOptions } from '../net/options.ts';
import { AUTH_FILE, CA_FILE, type Config } from './config.ts';

// dracut's network module reads these (also from /etc/cmdline.d inside the initrd): wait for the network, DHCP on every link.
export const NETWORK_ARGS = ['rd.neednet=1', 'ip=dhcp'] as const;

// wantsNetwork: whether the initrd needs the network: asked for, or the baked bundle is a URL.
export const wantsNetwork = (flag: boolean, c: Pick<Config, 'network' | 'bundle'>): boolean => flag || c.network || isUrl(c.bundle ?? '');

// networkBuild: what a network initrd needs from GENERATOR: dracut's network
// module and its arguments baked; for initramfs-tools, REIMAGE_NETWORK tells
// our hook to add the NIC drivers and bake IP=dhcp into conf/conf.d (a kernel
// ip= overrides it), and our init-premount script runs initramfs-tools' own
// configure_networking (klibc ipconfig) before reimage.
export function networkBuild(generator: string, wanted: boolean): { add: string[]; args: string[]; env: Record<string, string> } {
  if (!wanted) return { add: [], args: [], env: {} };
  if (generator === 'initramfs-tools') return { add: [], args: [], env: { REIMAGE_NETWORK: 'dhcp' } };
  return { add: ['network'], args: [...NETWORK_ARGS], env: {} };
}

// checkNetworkModule: dracut's network module ships apart from dracut-core on Debian (package dracut-network).
export function checkNetworkModule(modulesDir: string, wanted: boolean): void {
  if (!wanted) return;
  const has = readdirSync(modulesDir, { withFileTypes: true }).some((e) => /^\d+network$/.test(e.name));
  if (!has) throw new ReimageError('environment', `dracut has no network module in ${modulesDir}: install it (Debian: apt install dracut-network) to build a network initrd`);
}

// withBaked: CONFIG copied to a temporary directory with the site CA added as
// ca.pem and the credentials as auth (0600), each checked first as every
// download reads it (the config directory itself is never changed).
export async function withBaked(config: string, add: { ca?: string; authFile?: string }): Promise<{ dir: string; remove: () => Promise<void> }> {
  const net = await loadNetOptions(add);
  net.https.destroy();
  net.http.destroy();
  const dir = await mkdtemp(join(tmpdir(), 'reimage-config-'));
  await cp(config, dir, { recursive: true });
  if (add.ca) await cp(add.ca, join(dir, CA_FILE));
  if (add.authFile) {
    await cp(add.authFile, join(dir, AUTH_FILE));
    await chmod(join(dir, AUTH_FILE), 0o600);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
