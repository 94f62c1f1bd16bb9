// A reimage initrd that fetches its bundle over the network
// (rd.reimage.bundle=https://…): the generator's own network module brings
// the link up before reimage runs, and a site CA can be baked in. Asked for by
// `reimage initrd --network`, by the policy (`"network": true`), or implied
// by a baked bundle URL.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { ReimageError, usageError } from '../errors.ts';
import { loadNetOptions } from '../net/options.ts';
import { CA_FILE, type Config } from './config.ts';

// dracut's network module reads these (also from /etc/cmdline.d inside the initrd): wait for the network, DHCP on every link.
export const NETWORK_ARGS = ['rd.neednet=1', 'ip=dhcp'] as const;

// wantsNetwork: whether the initrd needs the network: asked for, or the baked bundle is a URL.
export const wantsNetwork = (flag: boolean, c: Pick<Config, 'network' | 'bundle'>): boolean => flag || c.network || /^https?:\/\//i.test(c.bundle ?? '');

// networkBuild: the modules to add and the kernel arguments to bake for GENERATOR.
export function networkBuild(generator: string, wanted: boolean): { add: string[]; args: string[] } {
  if (!wanted) return { add: [], args: [] };
  if (generator !== 'dracut') {
    throw usageError(`a network initrd (--network, "network": true, or a bundle URL in the config) is built with dracut's network module, but the generator is ${generator}: use --generator dracut`);
  }
  return { add: ['network'], args: [...NETWORK_ARGS] };
}

// checkNetworkModule: dracut's network module ships apart from dracut-core on Debian (package dracut-network).
export function checkNetworkModule(modulesDir: string, wanted: boolean): void {
  if (!wanted) return;
  const has = readdirSync(modulesDir, { withFileTypes: true }).some((e) => /^\d+network$/.test(e.name));
  if (!has) throw new ReimageError('environment', `dracut has no network module in ${modulesDir}: install it (Debian: apt install dracut-network) to build a network initrd`);
}

// withCa: CONFIG copied to a temporary directory with the site CA added as ca.pem (the config directory itself is never changed).
export async function withCa(config: string, ca: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const net = await loadNetOptions({ ca });
  net.https.destroy();
  net.http.destroy();
  const dir = await mkdtemp(join(tmpdir(), 'reimage-config-'));
  await cp(config, dir, { recursive: true });
  await cp(ca, join(dir, CA_FILE));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
