// Compression verbs: an external compressor writing a file, an external
// decompressor streaming a staged file. The codec names its tool and level;
// the tools are chosen by the codecs (pigz/gzip, lbzip2/bzip2, xz).
import { runVia, stream, type Stream, type Via } from './exec.ts';

// compressFile: TOOL ARGS -c IMAGE > OUT (hours allowed; exit default: environment).
export async function compressFile(tool: string, args: readonly string[], image: string, out: string, v: Via = {}): Promise<void> {
  await runVia(v)(tool, [...args, '-c', image], { outputFile: out, timeoutMs: 6 * 3600_000, exit: v.exit ?? 'environment' });
}

// decompressStream: TOOL ARGS reading FILE as stdin, its output as a stream (exit default: bundle).
export function decompressStream(tool: string, args: readonly string[], file: string, o: { stream?: typeof stream; exit?: Via['exit'] } = {}): Stream {
  return (o.stream ?? stream)(tool, args, { inputFile: file, exit: o.exit ?? 'bundle' });
}
