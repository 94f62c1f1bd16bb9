// A bundle served by any plain web server, CDN or object store:
// `https://host/path/` names the bundle directory (`…/manifest.json` works
// too). Small files are fetched whole with retries; the files the manifest
// names are downloaded resumably (net/download.ts), hashed while they come.
import { isUrl } from '../util/url.ts';
import { usageError } from '../errors.ts';
import { download, DEFAULT_RETRIES } from '../net/download.ts';
import { loadNetOptions } from '../net/options.ts';
import { getSmall, headSize } from '../net/small.ts';
import type { SourceKind } from './types.ts';

// baseUrl: the bundle directory's URL, ending in "/".
export function baseUrl(spec: string): URL {
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw usageError(`bundle URL ${spec} is not a valid URL: write e.g. https://host/path/to/bundle/`);
  }
  if (u.username || u.password) throw usageError(`bundle URL ${spec} carries credentials: put them in a file and give --auth-file FILE instead (a URL ends up in logs)`);
  u.hash = '';
  u.pathname = u.pathname.replace(/\/manifest\.json$/, '/').replace(/\/?$/, '/');
  return u;
}

export const httpKind = {
  forms: 'https://host/path/ (or http://)',
  matches: isUrl,
  open: async (spec, env) => {
    const base = baseUrl(spec);
    const net = await loadNetOptions(env.net);
    const retries = env.retries ?? env.net.retries ?? DEFAULT_RETRIES;
    const small = { net, log: env.log, retries, ...(env.signal ? { signal: env.signal } : {}) };
    const url = (name: string) => new URL(encodeURIComponent(name), base).toString();
    return {
      where: base.toString(),
      read: (name) => getSmall(url(name), name, small),
      size: (name) => headSize(url(name), small),
      bring: (name, dest, expect, add) => download(url(name), dest, expect, { net, log: env.log, what: name, add, retries, ...(env.signal ? { signal: env.signal } : {}) }),
      close: async () => {
        net.https.destroy();
        net.http.destroy();
      },
    };
  },
} satisfies SourceKind;
