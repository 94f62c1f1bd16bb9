// Where an image's partitions may lie: inside the image, logical partitions
// inside their extended partition, and no two data partitions sharing a
// sector. Checked by pack against the image, and by run and plan against the
// target disk before the point of no return (the manifest's table is the
// image's own, compared before writing), so a table the kernel would refuse
// or clip is refused then, not found by the settle after the write.
import { isExtended } from './table.ts';

type Part = { number: number; start: number; size: number; type: string };

// tableProblem: why TABLE's partitions cannot lie in the BYTES of WHERE (the image, the disk) as they are, or undefined.
export function tableProblem(table: { label: string; sectorSize: number; partitions: readonly Part[] }, bytes: number, where: string): string | undefined {
  const ss = table.sectorSize;
  const end = (p: Part) => p.start + p.size;
  for (const p of table.partitions) {
    if (end(p) * ss > bytes) return `partition ${p.number} of the image's table ends at byte ${end(p) * ss}, past the end of ${where} (${bytes} bytes): rebuild the image`;
  }
  const ext = table.label === 'dos' ? table.partitions.find((p) => isExtended(p.type)) : undefined;
  for (const p of table.partitions) {
    if (table.label === 'dos' && p.number >= 5 && (!ext || p.start < ext.start || end(p) > end(ext))) {
      return `logical partition ${p.number} of the image's table (sectors ${p.start}-${end(p) - 1}) lies outside ${ext ? `extended partition ${ext.number} (sectors ${ext.start}-${end(ext) - 1})` : 'any extended partition'}: rebuild the image's table`;
    }
  }
  const data = table.partitions.filter((p) => !(table.label === 'dos' && isExtended(p.type))).sort((a, b) => a.start - b.start);
  for (let i = 1; i < data.length; i++) {
    const [a, b] = [data[i - 1]!, data[i]!];
    if (b.start < end(a)) return `partitions ${a.number} and ${b.number} of the image's table overlap (sectors ${b.start}-${Math.min(end(a), end(b)) - 1}): rebuild the image's table`;
  }
  return undefined;
}
