// Mount paths — the manifest's `mounts[].path`, `pack --mount`, an image's
// fstab, `run --old-mount` — in one clean form, so that every consumer sees an
// absolute path with no `.`, `..` or empty component, no trailing slash and no
// NUL. The manifest refuses anything else; pack normalises what it reads.

const MAX = 4096; // PATH_MAX

// mountPathProblem: why a mount path is not in the clean form (undefined when it is).
export function mountPathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'is not absolute';
  if (p.includes('\0')) return 'contains a NUL byte';
  if (p.length > MAX) return `is longer than ${MAX} bytes`;
  if (p === '/') return undefined;
  if (p.endsWith('/')) return 'ends with a slash';
  for (const c of p.slice(1).split('/')) {
    if (c === '') return 'has an empty component (//)';
    if (c === '.' || c === '..') return `has a "${c}" component`;
  }
  return undefined;
}

// normaliseMountPath: `//a/./b/` → `/a/b`; a `..`, a relative path or a NUL
// gives undefined: where `..` leads depends on the symlinks of the system it is
// resolved in, so it is refused rather than guessed.
export function normaliseMountPath(p: string): string | undefined {
  if (!p.startsWith('/') || p.includes('\0')) return undefined;
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) return undefined;
  const out = '/' + parts.join('/');
  return mountPathProblem(out) ? undefined : out;
}

// duplicateMountPath: the first path that occurs twice in a plan.
export function duplicateMountPath(paths: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) return p;
    seen.add(p);
  }
  return undefined;
}
