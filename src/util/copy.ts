// A file copy that reports its progress: the bundle copied from a USB stick
// into RAM in the initramfs can take minutes, and a technician must see it move.
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

// copyTicking: FROM copied to TO (created or truncated), TICK told of every chunk.
export async function copyTicking(from: string, to: string, tick: (n: number) => void): Promise<void> {
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      tick(chunk.length);
      done(null, chunk);
    },
  });
  await pipeline(createReadStream(from, { highWaterMark: 4 << 20 }), count, createWriteStream(to));
}
