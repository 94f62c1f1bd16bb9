// The bundle source kinds, one file each, in a static registry. A spec is
// served by the first kind that recognises it (URLs, then block-device
// specs, then paths); each kind declares how it reads and brings the bundle,
// so nothing that uses a source branches on which kind it is.
import { usageError } from '../errors.ts';
import { deviceKind } from './device.ts';
import { dirKind } from './dir.ts';
import { httpKind } from './http.ts';
import type { Reader, SourceEnv, SourceKind } from './types.ts';

export type Kind = 'http' | 'device' | 'dir';

export const SOURCES = { http: httpKind, device: deviceKind, dir: dirKind } as const satisfies Record<Kind, SourceKind>;

// kindOf: the kind that serves SPEC; an unknown URL scheme is refused.
export function kindOf(spec: string): Kind {
  for (const [name, k] of Object.entries(SOURCES) as [Kind, SourceKind][]) if (k.matches(spec)) return name;
  throw usageError(
    `bundle location ${spec} is not understood: give ${Object.values(SOURCES)
      .map((k) => k.forms)
      .join('; ')}`,
  );
}

// openSource: SPEC opened by its kind; closed by the cleanup stack at the latest.
export async function openSource(spec: string, env: SourceEnv): Promise<Reader> {
  const r = await SOURCES[kindOf(spec)].open(spec, env);
  const close = env.cleanup.push(`close the bundle source ${r.where}`, r.close);
  return { ...r, close };
}
