// Glue for codecs decompressed by an external tool reading the staged file.
import { decompressStream } from '../system/tools.ts';
import type { Decoded } from './types.ts';

export function external(tool: string, args: readonly string[], file: string): Decoded {
  const s = decompressStream(tool, args, file, { exit: 'bundle' });
  return { stream: s.stdout, done: s.done, stop: s.kill };
}
