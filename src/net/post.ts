// The outcome reported to the fleet: the JSON report POSTed to an endpoint
// (a webhook, a collector), with a few retries, bounded in time so a dead
// endpoint never holds a machine back from its reboot for long. A failure is
// a warning, never the run's outcome.
import type { Log } from '../util/log.ts';
import type { NetOptions } from './options.ts';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export type PostOptions = { tries?: number; timeoutMs?: number; backoffMs?: number };

// postJson: BODY sent to URL; true when the endpoint answered 2xx (retried on errors, 408/429/5xx).
export async function postJson(url: string, body: unknown, net: NetOptions, log: Log, o: PostOptions = {}): Promise<boolean> {
  const data = Buffer.from(JSON.stringify(body));
  const tries = o.tries ?? 3;
  let last = '';
  for (let i = 1; i <= tries; i++) {
    const status = await once(url, data, net, o.timeoutMs ?? 5000).catch((e: NodeJS.ErrnoException) => {
      last = e.code ?? e.message;
      return 0;
    });
    if (status >= 200 && status < 300) {
      log.info(`report sent to ${url} (HTTP ${status})`);
      return true;
    }
    if (status) last = `HTTP ${status}`;
    if (status && status < 500 && status !== 408 && status !== 429) break;
    if (i < tries) await new Promise((r) => setTimeout(r, (o.backoffMs ?? 1000) * 2 ** (i - 1)));
  }
  log.warn(`the report could not be sent to ${url} (${last}): it is in the log and the report file only`);
  return false;
}

function once(url: string, data: Buffer, net: NetOptions, timeoutMs: number): Promise<number> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(u, {
      method: 'POST',
      agent: secure ? net.https : net.http,
      headers: { 'content-type': 'application/json', 'content-length': String(data.length), 'user-agent': 'reimage', ...(net.auth ? { authorization: net.auth } : {}) },
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(data);
  });
}
