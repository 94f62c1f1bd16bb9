// Which proof a bundle's bytes get before the point of no return. A bundle is
// never written unproven by default: with a block map every range carries its
// own sha256 and is checked as it is decoded, before it is handed to the disk;
// without one (a bundle not made by reimage pack) only the whole-image sha256
// exists, and it can only be checked at the end, so the whole image is
// decoded and hashed in RAM first. `--verify-raw` asks for that pass always;
// `--no-verify-raw` (or the policy's verifyRaw: false) skips it explicitly.
import type { Bundle } from '../bundle/read.ts';

export type Proof = { decodeFirst: boolean; text: string };

// proofFor: the proof B gets under the run's options (verifyRaw undefined: decide by the bundle).
export function proofFor(b: Pick<Bundle, 'bmap'>, verifyRaw: boolean | undefined): Proof {
  if (verifyRaw === true) return { decodeFirst: true, text: 'the whole image decoded and checked against the raw sha256 in RAM before writing (--verify-raw)' };
  if (b.bmap) return { decodeFirst: false, text: 'the compressed sha256 before writing, then every block-map range checked against its sha256 as it is decoded, before it is written' };
  if (verifyRaw === false)
    return {
      decodeFirst: false,
      text: 'the compressed sha256 only (the raw check was skipped by --no-verify-raw or the policy): a corrupt image is found during the write and the disk is invalidated',
    };
  return { decodeFirst: true, text: 'the whole image decoded and checked against the raw sha256 in RAM before writing (the bundle has no block map)' };
}
