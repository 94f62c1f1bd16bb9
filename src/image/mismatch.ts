// What the image core hands out and how it fails: decoded blocks go to a
// sink in order, and bytes that differ from what the (signed) manifest or
// block map promise are one error kind, a bundle error (exit 3 before the
// point of no return; the flow turns it into 10 after it).
import { ReimageError } from '../errors.ts';

// The size of the blocks handed to a sink (page-aligned, for O_DIRECT).
export const BLOCK = 4 << 20;

// A decoded block at its raw offset, and the [start, end) pieces of it the block map covers.
export type Sink = (block: Buffer, offset: number, covered: [number, number][]) => Promise<void>;

// The decoded bytes differ from what the manifest promises.
export class RawMismatch extends ReimageError {
  constructor(message: string) {
    super('bundle', message);
  }
}

export const REBUILD = 'rebuild the bundle with reimage pack';

// What the core needs to know of an image: its codec and the raw bytes it must decode to.
export type ImageSpec = { image: { codec: import('../codecs/names.ts').CodecName }; raw: { size: number; sha256: string } };
