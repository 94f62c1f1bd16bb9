// The codec names a manifest may state (its `image.codec`).
export const CODECS = ['zstd', 'gzip', 'xz', 'bzip2', 'none'] as const;
export type CodecName = (typeof CODECS)[number];
