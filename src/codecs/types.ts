// What every codec declares: how to recognise its bytes, how to decompress a
// staged file into a stream, and how pack compresses an image with it.
import type { Readable } from 'node:stream';
import type { Frame } from './seekable.ts';
import type { CodecName } from './names.ts';

export type Decoded = {
  // The raw image bytes.
  stream: Readable | (NodeJS.ReadableStream & AsyncIterable<Buffer>);
  // Resolves when any helper process has exited cleanly; rejects otherwise.
  done: Promise<void>;
  // Stops decompression early (the raw size was exceeded, or the write failed).
  stop: () => void;
};

export type Codec = {
  name: CodecName;
  // File name extension in a bundle: image.raw<ext>.
  ext: string;
  // Whether the first bytes of a file are this codec's magic number.
  magic: (head: Buffer) => boolean;
  // Decompress a file (already staged in RAM) into the raw image stream.
  decode: (file: string) => Decoded;
  // Compress IMAGE into OUT with the best tool available (pack only); TICK
  // hears of the raw bytes compressed (in-process codecs; a tool's own run is not watched).
  encode: (image: string, out: string, tick?: (n: number) => void) => Promise<void>;
  // Independent frames a staged file is made of, when it is so made: they are
  // then decoded and checked on every core (image/frames.ts); else it streams.
  frames?: (file: string) => Promise<Frame[] | undefined>;
};
