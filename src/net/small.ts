// Small files fetched whole into memory (a manifest, its signatures), with
// the same retries and backoff as a download: a flaky link must not fail a
// run on its first byte. Absent (404/410) is an answer, not an error: a
// bundle need not have both signature files.
import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream/promises';
import { sourceError } from '../errors.ts';
import { checkpoint } from '../util/interrupt.ts';
import type { Log } from '../util/log.ts';
import type { NetOptions } from './options.ts';
import { FatalHttpError, get, RetryableError, statusProblem } from './request.ts';

const MAX_SMALL = 4 << 20;

export type SmallOptions = { net: NetOptions; log: Log; signal?: AbortSignal; retries: number };

// getSmall: the body of URL (at most 4 MiB), or undefined when the server says it does not exist.
export async function getSmall(url: string, what: string, o: SmallOptions): Promise<Buffer | undefined> {
  return retrying(url, what, o, async () => {
    const a = await get(url, {}, o.net, 'GET', o.signal);
    if (a.res.statusCode === 404 || a.res.statusCode === 410) {
      await drain(a.res);
      return undefined;
    }
    const p = statusProblem(a, what);
    if (p) {
      a.res.resume();
      throw p;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of a.res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > MAX_SMALL) {
          a.res.destroy();
          throw new FatalHttpError(`${url} is larger than ${MAX_SMALL} bytes, too large for ${what}`);
        }
        chunks.push(c);
      }
    } catch (e) {
      if (e instanceof FatalHttpError) throw e;
      throw new RetryableError(`the transfer of ${what} was cut (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const len = Number(a.res.headers['content-length']);
    if (Number.isFinite(len) && n < len) throw new RetryableError(`the transfer of ${what} ended after ${n} of ${len} bytes`);
    return Buffer.concat(chunks);
  });
}

// headSize: the size the server states for URL (HEAD, Content-Length), or undefined.
export async function headSize(url: string, o: SmallOptions): Promise<number | undefined> {
  try {
    const a = await get(url, {}, o.net, 'HEAD', o.signal);
    await drain(a.res);
    const n = Number(a.res.headers['content-length']);
    return a.res.statusCode === 200 && Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

// drain: an answer's body discarded to its end, so its kept-alive connection is free for the next request.
async function drain(res: IncomingMessage): Promise<void> {
  res.resume();
  await finished(res).catch(() => undefined);
}

// retrying: FN again after a RetryableError, backing off (0.25 s doubling, at most 30 s), at most RETRIES times.
export async function retrying<T>(url: string, what: string, o: SmallOptions, fn: () => Promise<T>): Promise<T> {
  for (let fails = 1; ; fails++) {
    checkpoint(o.signal);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof FatalHttpError) throw sourceError(`fetching ${what}: ${e.message}`);
      if (!(e instanceof RetryableError)) throw e;
      if (fails > o.retries) throw sourceError(`fetching ${what} from ${url} failed ${fails} times in a row (last: ${e.message}): check the network and the server`);
      const wait = Math.min(30_000, e.retryAfter !== undefined ? e.retryAfter * 1000 : 250 * 2 ** (fails - 1));
      o.log.warn(`${what}: ${e.message}; trying again in ${(wait / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
