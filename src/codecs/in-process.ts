// Glue for codecs that decompress inside Node: a file stream piped through a
// zlib transform, with `done` settling when the transform ends or fails.
import type { Readable, Transform } from 'node:stream';
import { bundleError } from '../errors.ts';
import type { Decoded } from './types.ts';

export function inProcess(source: Readable, transform: Transform): Decoded {
  const out = source.pipe(transform);
  // The source's descriptor closes asynchronously, also after stop(): done
  // waits for it, so the RAM stage holding the file can be unmounted at once.
  const closed = new Promise<void>((resolve) => source.once('close', resolve));
  const done = new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => reject(bundleError(`the compressed image does not decompress: ${e.message}; rebuild the bundle with reimage pack`));
    transform.on('end', resolve);
    transform.on('close', resolve);
    transform.on('error', fail);
    source.on('error', fail);
  }).then(
    () => closed,
    (e: unknown) => closed.then(() => Promise.reject(e)),
  );
  done.catch(() => {});
  return {
    stream: out,
    done,
    stop: () => {
      source.destroy();
      transform.destroy();
    },
  };
}
