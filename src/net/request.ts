// One HTTP(S) GET or HEAD with Node's built-in client: redirects followed (at
// most 10; the credentials go only to the origin they were given for, never
// to the host a redirect names), a stall timeout while waiting for the
// answer, and transport failures turned into a RetryableError the download
// loop backs off on. TLS is always verified against the agent's CAs.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { NetOptions } from './options.ts';

// A failure worth another attempt: a connection error, a stall, 408/429/5xx.
export class RetryableError extends Error {
  // Seconds the server asked us to wait (Retry-After), when it did.
  readonly retryAfter: number | undefined;
  constructor(message: string, retryAfter?: number) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

// A failure another attempt will not fix (404, 401, a bad certificate, too many redirects).
export class FatalHttpError extends Error {}

const MAX_REDIRECTS = 10;
// TLS verification failures: retrying cannot help, and the message must say so.
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS|HOSTNAME/;

export type Answer = { res: IncomingMessage; url: string };

// get: the answer to METHOD URL with HEADERS, after redirects; the body is the caller's to read or discard.
export async function get(url: string, headers: Record<string, string>, net: NetOptions, method: 'GET' | 'HEAD' = 'GET', signal?: AbortSignal): Promise<Answer> {
  const origin = new URL(url).origin;
  let at = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const u = new URL(at);
    const h = { ...headers, ...(net.auth && u.origin === origin ? { authorization: net.auth } : {}) };
    const res = await once(u, method, h, net, signal);
    const loc = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && loc) {
      res.resume();
      const next = new URL(loc, u);
      // Never from TLS to plain HTTP: the bytes would no longer be the server's.
      if (u.protocol === 'https:' && next.protocol !== 'https:') throw new FatalHttpError(`${at} redirects to ${next.toString()}, leaving TLS: fix the server's redirect`);
      at = next.toString();
      continue;
    }
    return { res, url: at };
  }
  throw new FatalHttpError(`${url} redirects more than ${MAX_REDIRECTS} times`);
}

function once(u: URL, method: string, headers: Record<string, string>, net: NetOptions, signal?: AbortSignal): Promise<IncomingMessage> {
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(u, { method, headers: { 'user-agent': 'reimage', ...headers }, agent: secure ? net.https : net.http, ...(signal ? { signal } : {}) });
    const timer = setTimeout(() => req.destroy(new RetryableError(`no answer from ${u.host} within ${net.stallMs / 1000} s`)), net.stallMs);
    req.on('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e instanceof RetryableError || e.name === 'AbortError') return reject(e);
      if (TLS_CODES.test(e.code ?? '')) {
        const fix = net.ca ? `the CA in ${net.ca} does not vouch for it` : 'give the site CA with --ca FILE';
        return reject(new FatalHttpError(`the TLS certificate of ${u.host} is not trusted (${e.code}: ${e.message}): ${fix}`));
      }
      reject(new RetryableError(`${u.host}: ${e.code ?? e.message}`));
    });
    req.end();
  });
}

// statusProblem: why an answer's status is no success, as an error (retryable or not), or undefined.
export function statusProblem(a: Answer, what: string): Error | undefined {
  const s = a.res.statusCode ?? 0;
  if (s >= 200 && s < 300) return undefined;
  const after = Number(a.res.headers['retry-after']);
  if (s === 408 || s === 429 || s >= 500) return new RetryableError(`${a.url} answered HTTP ${s} for ${what}`, Number.isFinite(after) ? after : undefined);
  const fix = s === 401 || s === 403 ? 'give credentials with --auth-file FILE, or check them' : s === 404 ? 'check the URL (it names the bundle directory)' : 'check the URL and the server';
  return new FatalHttpError(`${a.url} answered HTTP ${s} for ${what}: ${fix}`);
}
