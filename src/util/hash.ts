// Streaming sha256 over a file with its byte count, optionally copying the
// bytes elsewhere as they are hashed (staging into RAM: one read, one pass).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { checkpoint } from './interrupt.ts';

// hashFile: PATH's sha256 and size (copied to COPYTO on the way), TICK told of every chunk.
export async function hashFile(path: string, copyTo?: string, signal?: AbortSignal, tick?: (n: number) => void): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  const out = copyTo ? createWriteStream(copyTo) : undefined;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
    if (signal?.aborted) {
      out?.destroy();
      checkpoint(signal);
    }
    h.update(chunk);
    size += chunk.length;
    tick?.(chunk.length);
    if (out && !out.write(chunk)) await once(out, 'drain');
  }
  if (out) {
    out.end();
    await finished(out);
  }
  return { sha256: h.digest('hex'), size };
}
