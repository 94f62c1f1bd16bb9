// Layout fingerprints (the OEM rescue requirement: "if the partition layout
// does not match its stored values, it will fail"): the disk's identity and
// partition table recorded once, and a target compared against the record,
// every difference named.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseJson } from '../util/json.ts';
import { targetError, usageError } from '../errors.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { partNumber, sfdiskJson } from '../system/tools.ts';
import type { Disk } from './sysfs.ts';

export const Fingerprint = z.strictObject({
  format: z.literal('reimage-fingerprint/1'),
  disk: z.strictObject({ size: z.number(), sectorSize: z.number(), model: z.string(), serial: z.string(), wwn: z.string() }),
  table: z
    .strictObject({
      label: z.string(),
      id: z.string(),
      partitions: z.array(z.strictObject({ number: z.number(), start: z.number(), size: z.number(), type: z.string(), uuid: z.string().optional(), name: z.string().optional() })),
    })
    .nullable(),
});
export type Fingerprint = z.infer<typeof Fingerprint>;

// fingerprint: the disk's identity and partition table as a record.
export async function fingerprint(d: Disk, sys: Sys = hostSys): Promise<Fingerprint> {
  const t = await sfdiskJson(d.node, sys);
  return {
    format: 'reimage-fingerprint/1',
    disk: { size: d.size, sectorSize: d.sectorSize, model: d.model, serial: d.serial, wwn: d.wwn },
    table: t
      ? {
          label: t.label,
          id: t.id.toLowerCase(),
          partitions: t.partitions.map((p) => ({
            number: partNumber(p.node),
            start: p.start,
            size: p.size,
            type: p.type.toLowerCase(),
            ...(p.uuid ? { uuid: p.uuid.toLowerCase() } : {}),
            ...(p.name ? { name: p.name } : {}),
          })),
        }
      : null,
  };
}

export type Cmp = (what: string, a: unknown, b: unknown) => void;
export const comparer =
  (out: string[]): Cmp =>
  (what, a, b) => {
    if (a !== b) out.push(`${what}: recorded ${JSON.stringify(a)}, found ${JSON.stringify(b)}`);
  };

// differences: one readable line per field that differs.
export function differences(want: Fingerprint, got: Fingerprint): string[] {
  const out: string[] = [];
  const cmp = comparer(out);
  for (const k of ['size', 'sectorSize', 'model', 'serial', 'wwn'] as const) cmp(`disk ${k}`, want.disk[k], got.disk[k]);
  tableDifferences(want.table, got.table, cmp, out);
  return out;
}

export type TableRecord = Fingerprint['table'];

// tableDifferences: the partition table's lines (type, id, each partition's place and identity).
export function tableDifferences(want: TableRecord, got: TableRecord, cmp: Cmp, out: string[]): void {
  if (!want || !got) {
    cmp('partition table', want ? want.label : null, got ? got.label : null);
    return;
  }
  cmp('table type', want.label, got.label);
  cmp('table id', want.id, got.id);
  const numbers = [...new Set([...want.partitions, ...got.partitions].map((p) => p.number))].sort((a, b) => a - b);
  for (const n of numbers) {
    const a = want.partitions.find((p) => p.number === n);
    const b = got.partitions.find((p) => p.number === n);
    if (!a || !b) {
      out.push(`partition ${n}: ${a ? 'recorded but missing' : 'found but not recorded'}`);
      continue;
    }
    for (const k of ['start', 'size', 'type', 'uuid', 'name'] as const) cmp(`partition ${n} ${k}`, a[k], b[k]);
  }
}

// checkFingerprint: refuse a target whose identity or layout differs from the record.
export async function checkFingerprint(d: Disk, file: string, sys: Sys = hostSys): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) throw usageError(`fingerprint ${file} cannot be read: record one with reimage fingerprint DEVICE --out FILE`);
  const recorded = parseJson(text, Fingerprint, `fingerprint ${file}`, 'record it again with reimage fingerprint', usageError);
  const diff = differences(recorded, await fingerprint(d, sys));
  if (diff.length) throw targetError(`target ${d.node} does not match the recorded fingerprint ${file}: ${diff.join('; ')}; this is not the disk the fingerprint was recorded from`, { diff });
}
