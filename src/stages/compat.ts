// Compatibility and anti-rollback. A manifest may carry `compatible` (which
// machines it is for) and `version`. Policy can require a compatible string;
// a version lower than the one the old system was installed from (read from
// its own /var/log/reimage/report.json) is a downgrade, refused unless allowed.
import { bundleError } from '../errors.ts';
import { readInRoot } from '../retention/inroot.ts';
import { bpath } from '../util/bytes.ts';
import type { Manifest } from '../bundle/manifest.ts';
import { REPORT_DIR } from './finish.ts';

// compareVersions: numeric where both segments are numbers (2026.10 < 2026.9.1 is false), else text.
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isInteger(nx) && Number.isInteger(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

export function checkCompatible(m: Manifest, required: string | undefined): void {
  if (!required) return;
  if (m.compatible !== required) {
    throw bundleError(`the bundle is for "${m.compatible ?? '(no compatible string)'}" but this machine needs "${required}": use the bundle built for this machine type`);
  }
}

// installedVersion: the bundle version recorded by the reimage that installed
// the old system, read inside the old root (a report that is a symlink is not
// followed: reported through `warn` and treated as absent).
export async function installedVersion(oldRoot: string, warn: (s: string) => void = () => {}): Promise<string | undefined> {
  const r = await readInRoot(oldRoot, bpath(`${REPORT_DIR}/report.json`));
  if (r.why) warn(`${r.why}: the installed version is unknown`);
  const text = r.bytes?.toString('utf8');
  try {
    const v = text ? (JSON.parse(text) as { bundle?: { version?: unknown } }).bundle?.version : undefined;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

export function checkDowngrade(m: Manifest, installed: string | undefined, allow: boolean): void {
  if (allow || !installed || !m.version) return;
  if (compareVersions(m.version, installed) < 0) {
    throw bundleError(`the bundle's version ${m.version} is older than the installed ${installed}: refusing a downgrade; allow it by policy (--allow-downgrade) if it is meant`);
  }
}
