// A resumable, hashed download of one file to DEST. The bytes go to
// DEST.part, and DEST.part.json records what they are (the URL, the sha256
// the manifest expects, the server's validator: a strong ETag, else
// Last-Modified). A later attempt, in this process after a cut or in the next
// one after a kill, asks only for the rest: `Range: bytes=N-` with
// `If-Range: <validator>`, and splices only on `206` whose `Content-Range`
// starts at N; a `200` (the file changed, or the server ignores ranges)
// restarts the file from zero, never splicing two versions. The bytes on
// hand are hashed again from the disk, so the final sha256 covers every byte
// of DEST. Retries back off on connection errors, stalls and 408/429/5xx;
// the deadline bounds the whole download.
import { createHash, type Hash } from 'node:crypto';
import { ftruncateSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { bundleError, sourceError } from '../errors.ts';
import { hashFile } from '../util/hash.ts';
import { checkpoint } from '../util/interrupt.ts';
import type { Log } from '../util/log.ts';
import type { NetOptions } from './options.ts';
import { FatalHttpError, get, RetryableError, statusProblem } from './request.ts';

export type Expect = { sha256: string; size?: number };
export type DownloadOptions = { net: NetOptions; log: Log; what: string; add?: (n: number) => void; signal?: AbortSignal; retries?: number };
// REUSED: DEST was already complete and checked; FETCHED: bytes that came over the network this time.
export type Downloaded = { sha256: string; size: number; fetched: number; reused: boolean };

export const DEFAULT_RETRIES = 6;
const BACKOFF_MS = 250;
const MAX_WAIT_MS = 30_000;

// GOT: bytes that came over the network in this process.
type Part = { fh: FileHandle; offset: number; hash: Hash; validator: string | undefined; got: number };
type Meta = { url: string; sha256: string; validator: string };

// download: URL into DEST, checked against EXPECT; resumed from DEST.part when it belongs to the same file.
export async function download(url: string, dest: string, expect: Expect, o: DownloadOptions): Promise<Downloaded> {
  const done = await stat(dest).catch(() => undefined);
  if (done?.isFile()) {
    const got = await hashFile(dest);
    if (got.sha256 === expect.sha256 && (expect.size === undefined || got.size === expect.size)) return { ...got, fetched: 0, reused: true };
    o.log.warn(`${o.what}: ${dest} is not the file the manifest names (sha256 ${got.sha256}): fetching it again`);
    await rm(dest);
  }
  const deadline = o.net.deadlineMs ? Date.now() + o.net.deadlineMs : Number.POSITIVE_INFINITY;
  const p = await openPart(dest, expect, o);
  let fails = 0;
  try {
    for (;;) {
      checkpoint(o.signal);
      const before = p.offset;
      try {
        if (await attempt(url, dest, expect, p, o, deadline)) break;
        fails = 0;
      } catch (e) {
        if (!(e instanceof RetryableError)) throw translate(e, url, o.what);
        fails = p.offset > before ? 1 : fails + 1;
        const wait = Math.min(MAX_WAIT_MS, e.retryAfter !== undefined ? e.retryAfter * 1000 : BACKOFF_MS * 2 ** (fails - 1));
        if (fails > (o.retries ?? DEFAULT_RETRIES) || Date.now() + wait > deadline) {
          const why = Date.now() + wait > deadline ? `did not finish within the ${o.net.deadlineMs / 1000} s deadline` : `failed ${fails} times in a row`;
          throw sourceError(
            `downloading ${o.what} from ${url} ${why} (last: ${e.message}), ${p.offset} bytes on hand: check the network and the server, then run again (it continues where it stopped)`,
          );
        }
        o.log.warn(`${o.what}: ${e.message}; trying again in ${(wait / 1000).toFixed(1)} s from byte ${p.offset}`);
        await sleep(wait, o.signal);
      }
    }
    await p.fh.sync();
  } finally {
    await p.fh.close();
  }
  const sha256 = p.hash.digest('hex');
  if (sha256 !== expect.sha256 || (expect.size !== undefined && p.offset !== expect.size)) {
    await rm(`${dest}.part`, { force: true });
    await rm(`${dest}.part.json`, { force: true });
    throw bundleError(
      `${o.what} downloaded from ${url} is ${p.offset} bytes with sha256 ${sha256} but the manifest says ${expect.size ?? '?'} bytes with sha256 ${expect.sha256}: the file on the server is corrupt or altered; fix the bundle on the server (the partial file was removed)`,
      { expected: expect.sha256, actual: sha256 },
    );
  }
  await rename(`${dest}.part`, dest);
  await rm(`${dest}.part.json`, { force: true });
  return { sha256, size: p.offset, fetched: p.got, reused: false };
}

// openPart: DEST.part with the bytes on hand hashed, when its record says they belong to this file; else an empty one.
async function openPart(dest: string, expect: Expect, o: DownloadOptions): Promise<Part> {
  const meta = await readFile(`${dest}.part.json`, 'utf8')
    .then((t) => JSON.parse(t) as Partial<Meta>)
    .catch(() => undefined);
  const fh = await open(`${dest}.part`, 'a+');
  const size = (await fh.stat()).size;
  const fits = meta?.sha256 === expect.sha256 && typeof meta.validator === 'string' && (expect.size === undefined || size <= expect.size);
  if (size > 0 && fits) {
    const hash = createHash('sha256');
    for await (const chunk of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
    o.log.info(`${o.what}: continuing from byte ${size} (kept from an earlier attempt)`);
    o.add?.(size);
    return { fh, offset: size, hash, validator: meta.validator, got: 0 };
  }
  if (size > 0) o.log.info(`${o.what}: the partial file on hand belongs to another version: fetching it from the start`);
  await fh.truncate(0);
  return { fh, offset: 0, hash: createHash('sha256'), validator: undefined, got: 0 };
}

// attempt: one request for what is missing; true when the file is complete.
async function attempt(url: string, dest: string, expect: Expect, p: Part, o: DownloadOptions, deadline: number): Promise<boolean> {
  if (expect.size !== undefined && p.offset === expect.size) return true;
  const ranged = p.offset > 0 && p.validator !== undefined;
  if (p.offset > 0 && !ranged) restart(p, o, 'the server gave no validator (ETag, Last-Modified) to resume it safely');
  const a = await get(url, ranged ? { range: `bytes=${p.offset}-`, 'if-range': p.validator as string } : {}, o.net, 'GET', o.signal);
  const s = a.res.statusCode ?? 0;
  if (s === 416 && ranged) {
    a.res.resume();
    restart(p, o, 'the server refused the range (the file is shorter now)');
    return false;
  }
  const problem = statusProblem(a, o.what);
  if (problem) {
    a.res.resume();
    throw problem;
  }
  if (ranged && s === 206) {
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(a.res.headers['content-range'] ?? ''));
    const total = cr?.[3] === '*' ? undefined : Number(cr?.[3]);
    if (!cr || Number(cr[1]) !== p.offset || (expect.size !== undefined && total !== undefined && total !== expect.size)) {
      a.res.resume();
      restart(p, o, `the server answered the range with Content-Range "${a.res.headers['content-range'] ?? ''}"`);
      return false;
    }
  } else if (p.offset > 0) {
    restart(p, o, s === 206 ? 'an unasked range came back' : 'the server sent the whole file (the file changed, or the server ignores ranges)');
  }
  const validator = validatorOf(a.res);
  if (validator !== p.validator || p.offset === 0) {
    p.validator = validator;
    // Synchronously, like everything between the answer and receive(): no event of the body may come first.
    if (validator) writeFileSync(`${dest}.part.json`, JSON.stringify({ url, sha256: expect.sha256, validator } satisfies Meta));
    else rmSync(`${dest}.part.json`, { force: true });
  }
  return receive(a.res, p, expect, o, deadline);
}

// restart: the part emptied (synchronously: an answer's events must not run before its listeners are on).
function restart(p: Part, o: DownloadOptions, why: string): void {
  o.log.info(`${o.what}: ${why}: fetching it from the start`);
  ftruncateSync(p.fh.fd, 0);
  p.offset = 0;
  p.hash = createHash('sha256');
  p.validator = undefined;
}

// receive: the body appended to the part and hashed; a stall or a cut is
// retryable, the bytes so far kept. Each chunk is written as it is emitted
// (synchronously): a stream destroyed by a cut drops what it buffered, and
// those bytes would cross the network twice.
function receive(res: IncomingMessage, p: Part, expect: Expect, o: DownloadOptions, deadline: number): Promise<boolean> {
  const length = Number(res.headers['content-length']);
  const start = p.offset;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      res.destroy();
      reject(e);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new RetryableError(`no byte for ${o.net.stallMs / 1000} s (stalled)`)), Math.min(o.net.stallMs, Math.max(1, deadline - Date.now())));
    };
    arm();
    res.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        checkpoint(o.signal);
        if (expect.size !== undefined && p.offset + chunk.length > expect.size) {
          throw bundleError(`${o.what} on the server is longer than the ${expect.size} bytes the manifest says: fix the bundle on the server`);
        }
        writeSync(p.fh.fd, chunk, 0, chunk.length, p.offset);
        p.hash.update(chunk);
        p.offset += chunk.length;
        p.got += chunk.length;
        o.add?.(chunk.length);
        if (Date.now() > deadline) throw new RetryableError('the deadline passed');
        arm();
      } catch (e) {
        fail(e);
      }
    });
    res.on('error', (e: NodeJS.ErrnoException) => fail(new RetryableError(`the transfer was cut (${e.code ?? e.message})`)));
    res.on('close', () => {
      const got = p.offset - start;
      if (!res.complete || (Number.isFinite(length) && got < length)) return fail(new RetryableError(`the transfer ended after ${got}${Number.isFinite(length) ? ` of ${length}` : ''} bytes`));
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(expect.size === undefined || p.offset === expect.size);
    });
  });
}

const validatorOf = (res: IncomingMessage): string | undefined => {
  const etag = res.headers.etag;
  if (etag && !etag.startsWith('W/')) return etag;
  return res.headers['last-modified'];
};

// translate: a fatal HTTP failure as the source error it is; our own errors pass.
function translate(e: unknown, url: string, what: string): unknown {
  if (e instanceof FatalHttpError) return sourceError(`downloading ${what}: ${e.message}`);
  if (e instanceof Error && e.name === 'AbortError') return e;
  if (e instanceof Error && !(e as { exit?: unknown }).exit) return sourceError(`downloading ${what} from ${url} failed: ${e.message}`);
  return e;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
