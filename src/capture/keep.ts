// Which partitions of the reference disk the capture leaves out (--keep):
// PARTLABEL=NAME, PARTUUID=GUID or TYPE=GUID (the GPT type), each matching at
// least one partition. The recovery partition is always kept.
// (An interim matcher: it gives way to the kept-partitions selectors of the
// run's policy once those exist, so both read one syntax.)
import { usageError } from '../errors.ts';
import { partNumber, type SfdiskTable } from '../system/tools.ts';

type SfPart = SfdiskTable['partitions'][number];

const FIELDS = { PARTLABEL: (p: SfPart) => p.name ?? '', PARTUUID: (p: SfPart) => (p.uuid ?? '').toLowerCase(), TYPE: (p: SfPart) => p.type.toLowerCase() } as const;

// keptNumbers: the partition numbers SELECTORS name on the disk NODE.
export function keptNumbers(node: string, t: SfdiskTable, selectors: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const s of selectors) {
    const m = /^(PARTLABEL|PARTUUID|TYPE)=(.+)$/.exec(s);
    if (!m) throw usageError(`--keep "${s}" is not understood: write PARTLABEL=NAME, PARTUUID=GUID or TYPE=GUID`);
    const field = FIELDS[m[1] as keyof typeof FIELDS];
    const want = m[1] === 'PARTLABEL' ? m[2]! : m[2]!.toLowerCase();
    const hits = t.partitions.filter((p) => field(p) === want);
    if (!hits.length) throw usageError(`--keep ${s} matches no partition of ${node} (${t.partitions.map((p) => `${p.node}: ${p.name ?? '-'}`).join(', ')}): fix the selector`);
    for (const p of hits) out.add(partNumber(p.node));
  }
  return out;
}
