// How downloads reach a server: the trust (Node's built-in CA store plus an
// optional site CA, always verified: there is no insecure switch), the
// credentials for a private store (basic or bearer, from a file so they never
// appear in `ps` or a kernel command line), and the time limits (a stall
// timeout between bytes, an overall deadline).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { z } from 'zod';
import { usageError } from '../errors.ts';
import { formatIssues } from '../util/json.ts';

export type NetOptions = {
  https: HttpsAgent;
  http: HttpAgent;
  // The Authorization header value, sent only to the origin of the URL given.
  auth?: string;
  // No byte for this long: the attempt is abandoned (and retried).
  stallMs: number;
  // The whole download ends with an error past this (0: no deadline).
  deadlineMs: number;
  // Where the site CA came from, for error messages.
  ca?: string;
};

export type NetFlags = { ca?: string; authFile?: string; stallSeconds?: number; deadlineSeconds?: number; retries?: number };

export const DEFAULT_STALL_S = 60;
export const DEFAULT_DEADLINE_S = 6 * 3600;

// The limits of every download, as the CLI (--stall-timeout, --deadline,
// --retries) and the baked policy (stallTimeout, deadline, retries) give them,
// in seconds and attempts: validated here once, for both.
export const NetLimits = z.strictObject({
  stallTimeout: z.number().int().min(1).max(86400).optional(),
  deadline: z
    .number()
    .int()
    .min(1)
    .max(30 * 86400)
    .optional(),
  retries: z.number().int().min(0).max(1000).optional(),
});
export type NetLimits = z.infer<typeof NetLimits>;

const FLAG_OF = { stallTimeout: 'stall-timeout', deadline: 'deadline', retries: 'retries' } as const;

// netLimitFlags: the three flags' text checked against NetLimits (a whole number each), as NetFlags.
export function netLimitFlags(text: Partial<Record<keyof NetLimits, string>>): NetFlags {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(text)) if (v !== undefined) raw[k] = /^[0-9]{1,9}$/.test(v) ? Number(v) : v;
  const r = NetLimits.safeParse(raw);
  if (!r.success) {
    const key = r.error.issues[0]?.path[0] as keyof NetLimits;
    throw usageError(`--${FLAG_OF[key] ?? key} ${text[key]} is not valid (${formatIssues(r.error)}): give a whole number, e.g. --stall-timeout 60 --deadline 21600 --retries 6`);
  }
  return limitsAsFlags(r.data);
}

// limitsAsFlags: validated limits (from the CLI or the policy) as NetFlags.
export const limitsAsFlags = (l: NetLimits): NetFlags => ({
  ...(l.stallTimeout !== undefined ? { stallSeconds: l.stallTimeout } : {}),
  ...(l.deadline !== undefined ? { deadlineSeconds: l.deadline } : {}),
  ...(l.retries !== undefined ? { retries: l.retries } : {}),
});

// loadNetOptions: agents and credentials from the flags (or the baked policy).
export async function loadNetOptions(f: NetFlags = {}): Promise<NetOptions> {
  const ca = f.ca ? await loadCa(f.ca) : undefined;
  const auth = f.authFile ? parseAuth(await readSecret(f.authFile), f.authFile) : undefined;
  return {
    https: new HttpsAgent({ keepAlive: true, ...(ca ? { ca: [...rootCertificates, ...ca] } : {}) }),
    http: new HttpAgent({ keepAlive: true }),
    ...(auth ? { auth } : {}),
    stallMs: (f.stallSeconds ?? DEFAULT_STALL_S) * 1000,
    deadlineMs: (f.deadlineSeconds ?? DEFAULT_DEADLINE_S) * 1000,
    ...(f.ca ? { ca: f.ca } : {}),
  };
}

// loadCa: every PEM certificate in FILE (a site CA, or a chain of them), each parsed so a bad file fails here.
async function loadCa(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw usageError(`CA file ${file} cannot be read (${e.code}): give a PEM file holding the site's CA certificate`);
  });
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw usageError(`CA file ${file} holds no PEM certificate: give the site's CA certificate (-----BEGIN CERTIFICATE-----)`);
  for (const p of pems) {
    try {
      new X509Certificate(p);
    } catch (e) {
      throw usageError(`CA file ${file} holds a certificate that cannot be parsed (${(e as Error).message}): give the site's CA certificate in PEM`);
    }
  }
  return pems;
}

async function readSecret(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw usageError(`auth file ${file} cannot be read (${e.code}): give a file holding "basic USER:PASSWORD" or "bearer TOKEN"`);
  });
}

// parseAuth: one line, `basic USER:PASSWORD` or `bearer TOKEN`, as an Authorization header value.
export function parseAuth(text: string, file: string): string {
  const line = text.trim();
  const m = /^(basic|bearer|targettoken|gatewaytoken)\s+(\S+)$/i.exec(line);
  if (!m || line.includes('\n'))
    throw usageError(`auth file ${file} is not understood: write one line, "basic USER:PASSWORD", "bearer TOKEN" (or hawkBit's "targettoken TOKEN" / "gatewaytoken TOKEN")`);
  const [, kind, value] = m as unknown as [string, string, string];
  if (kind.toLowerCase() === 'bearer') return `Bearer ${value}`;
  // hawkBit's DDI authentication schemes.
  if (kind.toLowerCase() === 'targettoken') return `TargetToken ${value}`;
  if (kind.toLowerCase() === 'gatewaytoken') return `GatewayToken ${value}`;
  if (!value.includes(':')) throw usageError(`auth file ${file}: basic credentials must be USER:PASSWORD`);
  return `Basic ${Buffer.from(value, 'utf8').toString('base64')}`;
}
