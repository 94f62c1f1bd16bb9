// Where every outcome's report goes (stages/outcome.ts): the endpoint, with
// the site CA and the credentials of the CLI's flags or the initrd's baked
// files, the credentials sent to the endpoint's own origin alone.
import { type ReportFormat, shapeReport } from './hawkbit.ts';
import { loadNetOptions, type NetFlags } from './options.ts';
import { postJson } from './post.ts';
import type { Deliver } from '../stages/outbox.ts';
import type { Log } from '../util/log.ts';

// sendReport: BODY (the report as shaped) to URL (bounded retries; a failure is a warning); true when the endpoint took it.
async function sendReport(url: string, net: NetFlags, body: unknown, log: Log): Promise<boolean> {
  const agents = await loadNetOptions(net);
  try {
    return await postJson(url, body, agents, log);
  } finally {
    agents.https.destroy();
    agents.http.destroy();
  }
}

// deliverTo: the report endpoint (stages/outcome.ts sends every outcome through
// it). The credentials go only to URL's origin, a kept report's too; they are
// read here once, so a bad --auth-file is refused before anything happens.
export async function deliverTo(url: string | undefined, net: NetFlags, log: Log, format?: ReportFormat): Promise<Deliver | undefined> {
  if (!url) return undefined;
  const { auth } = await loadNetOptions(net);
  const origin = new URL(url).origin;
  const { authFile: _, ...bare } = net;
  const send = (body: unknown, to = url) => sendReport(to, new URL(to).origin === origin ? net : bare, body, log);
  return { url, send, shape: (r) => shapeReport(format, r), ...(net.ca ? { ca: net.ca } : {}), ...(auth ? { auth } : {}) };
}
