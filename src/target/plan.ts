// The write plan: what the write stage does with the blocks a block map leaves
// out (zeros in the image), from the unmapped policy and what this disk can do
// (write-zeroes and discard offloads, read from sysfs). Pure apart from those
// two sysfs reads; the write stage carries the plan out.
import { blocksCount, mappedBlocks, type BlockMap, type Unmapped } from '../bmap/format.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { queueLimit, type Disk } from './sysfs.ts';

export type WritePlan = {
  // Write only what the block map covers (else every byte).
  mappedOnly: boolean;
  // Blank [0, image size) first, and how.
  blank?: 'zero' | 'discard';
  // Whether the disk ends up equal to the whole image (read-back checks all of it).
  wholeImage: boolean;
  unmapped: Unmapped | 'no block map';
  why: string;
};

// planWrite: the unmapped policy applied to what this disk can do.
export async function planWrite(disk: Disk, map: BlockMap | undefined, policy: Unmapped, sys: Sys = hostSys): Promise<WritePlan> {
  if (!map) return { mappedOnly: false, wholeImage: true, unmapped: 'no block map', why: 'the bundle has no block map: writing every byte' };
  const share = `${((100 * mappedBlocks(map)) / Math.max(1, blocksCount(map))).toFixed(1)} % of the image is mapped`;
  switch (policy) {
    case 'write':
      return { mappedOnly: false, wholeImage: true, unmapped: policy, why: `${share}; unmapped=write: writing every byte` };
    case 'zero':
      if ((await queueLimit(disk.name, 'write_zeroes_max_bytes', sys)) > 0) {
        return { mappedOnly: true, blank: 'zero', wholeImage: true, unmapped: policy, why: `${share}; unmapped=zero: the disk zeroes the rest itself (write-zeroes offload)` };
      }
      return { mappedOnly: false, wholeImage: true, unmapped: policy, why: `${share}; unmapped=zero: the disk has no write-zeroes offload, so the zeros are written` };
    case 'discard':
      if ((await queueLimit(disk.name, 'discard_max_bytes', sys)) > 0) {
        return { mappedOnly: true, blank: 'discard', wholeImage: false, unmapped: policy, why: `${share}; unmapped=discard: the rest is discarded (it may read back as old data)` };
      }
      return { mappedOnly: true, wholeImage: false, unmapped: policy, why: `${share}; unmapped=discard: the disk cannot discard, so the rest is left as it was` };
    case 'leave':
      return { mappedOnly: true, wholeImage: false, unmapped: policy, why: `${share}; unmapped=leave: the rest keeps what the old system had` };
  }
}
