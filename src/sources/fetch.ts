// `reimage fetch URL --out DIR`: a bundle downloaded to local storage (a data
// partition, ahead of the reboot), verified against its (signed) manifest,
// and resumable: run it again after a cut, a kill or a power loss and each
// file continues from the bytes on hand (net/download.ts); a file already
// complete is checked, never fetched again. The manifest is written last, so
// DIR holds a usable bundle exactly when it has a manifest.json.
import { mkdir } from 'node:fs/promises';
import { loadBundle } from '../bundle/read.ts';
import type { TrustedKey } from '../bundle/sign.ts';
import { ReimageError } from '../errors.ts';
import { bringBundle, type BroughtBundle } from './bring.ts';
import { openSource } from './index.ts';
import type { SourceEnv } from './types.ts';

export type FetchResult = BroughtBundle & { out: string; where: string };

// fetchBundle: SPEC's bundle into OUT, checked file by file and then as a whole bundle.
export async function fetchBundle(spec: string, out: string, o: SourceEnv & { trusted: readonly TrustedKey[]; tty: boolean }): Promise<FetchResult> {
  await mkdir(out, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new ReimageError('environment', `cannot create the bundle directory ${out} (${e.code}): choose another --out`);
  });
  const r = await openSource(spec, o);
  try {
    const b = await bringBundle(r, out, { trusted: o.trusted, log: o.log, tty: o.tty });
    // The local copy read back as any bundle is (signature over the written bytes, codec magic, block map, list).
    await loadBundle(out, [...o.trusted]);
    return { ...b, out, where: r.where };
  } finally {
    await r.close();
  }
}
