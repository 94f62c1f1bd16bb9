// The one place a run's report leaves the process, whatever the outcome
// (success, refused before writing, failed after writing, interrupted, the
// bundle not brought): POSTed to the endpoint (net/post.ts retries); when the
// endpoint does not take it, kept where it is sent later:
//   - the new system's outbox, when it is mounted (a success: outbox.ts);
//   - else the bundle's medium: reimage-outbox/ beside the bundle (a USB
//     stick, a kept partition), or for a bundle by URL the kept partition the
//     run chose (stages/keep.ts keptHome: reimage-outbox/ at its root); never
//     the target's other partitions; a directory 0700 holding <id>.json (the
//     body, 0600) and <id>.url (0600).
//     The next run (reimage run, or the initramfs) sends those first, oldest
//     first, and removes each one the endpoint took (sendKept);
//   - else nowhere, and the log and the report's own notes say so.
import { chmod, lstat, mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { disksBelow } from '../target/sysfs.ts';
import { join } from 'node:path';
import { dirPlace, syncPath, type KeepPlace } from '../retention/archive.ts';
import type { Log } from '../util/log.ts';
import { type Deliver, keepInSystem, reportId } from './outbox.ts';

export const MEDIUM_OUTBOX = 'reimage-outbox';

// deliver: REPORT sent through D (once per run: later calls do nothing); kept
// in the new system under NEWROOT when given, else on the bundle's medium.
export async function deliver(d: Deliver | undefined, report: unknown, log: Log, newRoot?: string): Promise<void> {
  if (!d || d.tried) return;
  d.tried = true;
  const body = d.shape ? d.shape(report) : report;
  if (await d.send(body)) return;
  const inSystem = newRoot ? await keepInSystem(newRoot, body, d, log) : undefined;
  const where = inSystem ?? (await keepOnMedium(d, body, log));
  note(
    report,
    where
      ? `the report could not be sent to ${d.url}: kept as ${where}, sent by the next ${inSystem ? 'boot' : 'reimage run'}`
      : `the report could not be sent to ${d.url} and could not be kept (${lost(d)}): it is in this output and the log only`,
  );
}

// keepOnMedium: BODY written to the medium's outbox; where (for messages), or undefined after saying why not.
async function keepOnMedium(d: Deliver, body: unknown, log: Log): Promise<string | undefined> {
  if (!d.medium) {
    log.warn(`the report could not be sent to ${d.url} and is kept nowhere: ${lost(d)}`);
    return undefined;
  }
  const id = reportId();
  try {
    const { dir, close } = await d.medium.open();
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const st = await lstat(dir);
      if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a link?): remove it`);
      await chmod(dir, 0o700);
      await writeNew(join(dir, `${id}.url`), `${d.url}\n`);
      await writeNew(join(dir, `${id}.json`), JSON.stringify(body, null, 2) + '\n');
      await syncPath(dir);
    } finally {
      await close();
    }
    const where = `${d.medium.name}/${id}.json`;
    log.warn(`the report could not be sent to ${d.url}: kept on the bundle's medium as ${where}; the next reimage run sends it first`);
    return where;
  } catch (e) {
    log.warn(`the report could not be sent to ${d.url} and is kept nowhere: the bundle's medium ${d.medium.name} is not writable (${(e as Error).message})`);
    return undefined;
  }
}

// sendKept: the reports earlier runs kept on the bundle's medium, sent oldest
// first, each removed once the endpoint took it; the first one refused stops
// the round (the order is kept), and this run goes on either way. The medium
// is looked at read-only first: one with nothing kept is never written.
export async function sendKept(d: Deliver | undefined, log: Log): Promise<void> {
  if (!d?.medium) return;
  try {
    const look = await d.medium.open(false);
    const none = (await keptIds(look.dir)).length === 0;
    await look.close();
    if (none) return;
    const { dir, close } = await d.medium.open(true);
    try {
      const ids = await keptIds(dir);
      for (const id of ids) {
        const url = (await readFile(join(dir, `${id}.url`), 'utf8').catch(() => d.url)).trim();
        const body: unknown = JSON.parse(await readFile(join(dir, `${id}.json`), 'utf8'));
        if (!(await d.send(body, url))) {
          log.warn(`a report kept on the bundle's medium (${d.medium.name}/${id}.json) could not be sent to ${url} yet: it stays for the next run`);
          return;
        }
        await rm(join(dir, `${id}.json`), { force: true });
        await rm(join(dir, `${id}.url`), { force: true });
        log.info(`the report kept on the bundle's medium as ${d.medium.name}/${id}.json was sent to ${url} and removed`);
      }
      if (ids.length) await syncPath(dir);
    } finally {
      await close();
    }
  } catch (e) {
    log.warn(`the reports kept on the bundle's medium ${d.medium.name} could not be read (${(e as Error).message}): they stay there`);
  }
}

// localMedium: a bundle given as a local directory (or its manifest.json)
// keeps reports beside it, unless that directory is on the TARGET disk
// (nothing is written to it before the point of no return).
export async function localMedium(spec: string, target: string, log: Log): Promise<KeepPlace | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec) || spec.includes(':')) return undefined;
  const dir = spec.replace(/\/manifest\.json$/, '');
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return undefined;
  const t = await stat(target).catch(() => undefined);
  const targetDisks = t?.isBlockDevice() ? await disksBelow(t.rdev) : [];
  if (targetDisks.length && (await disksBelow(st.dev)).some((x) => targetDisks.includes(x))) {
    log.info(`the bundle directory ${dir} is on the target disk: a report the endpoint does not take is not kept there`);
    return undefined;
  }
  return dirPlace(join(dir, MEDIUM_OUTBOX), true);
}

// keptIds: the reports kept in DIR, oldest first.
const keptIds = async (dir: string) =>
  (await readdir(dir).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();

const lost = (d: Deliver) =>
  d.medium
    ? `the bundle's medium ${d.medium.name} is not writable`
    : 'the bundle came from no writable medium (a URL) and no kept partition of the target was known to hold it (name one: --keep PARTLABEL=…, the policy\'s "keep"); nothing else is written to the target before its point of no return';

// note: the line added to the report's own notes (printed with --json).
function note(report: unknown, line: string): void {
  const notes = (report as { notes?: unknown } | null)?.notes;
  if (Array.isArray(notes)) notes.push(line);
  else if (report && typeof report === 'object') (report as Record<string, unknown>)['notes'] = [line];
}

// writeNew: TEXT in a new file, root-only (0600), synced.
async function writeNew(file: string, text: string): Promise<void> {
  const fh = await open(file, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
