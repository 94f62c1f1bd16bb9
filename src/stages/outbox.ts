// The report outbox: a report the endpoint did not take (network down, a
// 5xx, a timeout) is not lost. It is POSTed from the finish stage while the
// new system is still mounted; when that fails it is kept in the new system,
// the one system that boots next and has a network: as
// /var/lib/reimage/outbox/<id>.json (the document) and <id>.url (where it
// goes), with a small POSIX sh sender and a oneshot systemd unit enabled for
// multi-user.target, which POSTs each kept report with curl at every boot
// (after network-online.target, retried every 5 minutes while one is left)
// and removes it on a 2xx. A site CA the run trusted is kept as ca.pem beside;
// the endpoint's credentials (--auth-file) as <id>.auth (0600, a header curl
// reads with -H @file: never on a command line, never in the report).
// A report that cannot go here (no new system) goes to the bundle's medium: outcome.ts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { resolveParent, writeInRoot } from '../retention/inroot.ts';
import type { BPath } from '../util/bytes.ts';
import type { Log } from '../util/log.ts';
import type { KeepPlace } from '../retention/archive.ts';

export const OUTBOX_DIR = '/var/lib/reimage/outbox';
export const SENDER = '/usr/lib/reimage/send-reports';
export const UNIT = 'reimage-report.service';

// Deliver: where the report goes and how (send resolves true on a 2xx; to URL
// when given, a kept report's, with the credentials only on the origin of
// `url`); tried is set once the run's report was handled (outcome.ts).
// shape: the body sent for the report (the report itself, or hawkBit's DDI feedback: net/hawkbit.ts); the outbox keeps that body.
// auth: the Authorization header value (from --auth-file), for the kept report's sender.
// medium: the bundle's medium (reimage-outbox/ beside the bundle), once known: outcome.ts.
export type Deliver = {
  url: string;
  send: (body: unknown, url?: string) => Promise<boolean>;
  shape?: (report: unknown) => unknown;
  ca?: string;
  auth?: string;
  medium?: KeepPlace;
  tried?: boolean;
};

// The sender in the new system: every kept report POSTed, removed on a 2xx; exit 1 while any is left.
export const SENDER_SH = `#!/bin/sh
# reimage: POST the reports kept while the network was down (${OUTBOX_DIR}),
# each to the URL beside it; a report is removed once the endpoint took it (2xx).
set -u
dir=\${REIMAGE_OUTBOX:-${OUTBOX_DIR}}
left=0
for f in "$dir"/*.json; do
	[ -e "$f" ] || continue
	id=\${f%.json}
	url=$(cat "$id.url") || { left=1; continue; }
	set -- --silent --show-error --fail --max-time 30 --retry 3 --retry-delay 2 -o /dev/null \\
		-H 'content-type: application/json' --data-binary "@$f"
	if [ -f "$dir/ca.pem" ]; then set -- "$@" --cacert "$dir/ca.pem"; fi
	if [ -f "$id.auth" ]; then set -- "$@" -H "@$id.auth"; fi
	if curl "$@" "$url"; then
		rm -f "$f" "$id.url" "$id.auth"
		echo "reimage: report $f sent to $url"
	else
		left=1
	fi
done
if [ "$left" = 0 ]; then rm -f "$dir/ca.pem"; fi
exit "$left"
`;

export const UNIT_TEXT = `[Unit]
Description=Send the reimage reports kept while the network was down
Wants=network-online.target
After=network-online.target
ConditionDirectoryNotEmpty=${OUTBOX_DIR}

[Service]
Type=oneshot
ExecStart=/bin/sh ${SENDER}
Restart=on-failure
RestartSec=5min

[Install]
WantedBy=multi-user.target
`;

// reportId: a kept report's name: its time and a count (so names sort in the order the reports were made), and a random tail.
let made = 0;
export const reportId = () => `${new Date().toISOString().replace(/[:.]/g, '-')}-${String(made++).padStart(4, '0')}-${randomBytes(3).toString('hex')}`;

// keepInSystem: BODY (the endpoint did not take it) kept in the new system under ROOT with its sender; where, or undefined (warned) when it could not be.
export async function keepInSystem(root: string, body: unknown, d: Deliver, log: Log): Promise<string | undefined> {
  const id = reportId();
  try {
    await writeInRoot(root, `${OUTBOX_DIR}/${id}.json` as BPath, JSON.stringify(body, null, 2) + '\n', 0o600);
    await writeInRoot(root, `${OUTBOX_DIR}/${id}.url` as BPath, `${d.url}\n`, 0o600);
    if (d.auth) await writeInRoot(root, `${OUTBOX_DIR}/${id}.auth` as BPath, `Authorization: ${d.auth}\n`, 0o600);
    if (d.ca) await writeInRoot(root, `${OUTBOX_DIR}/ca.pem` as BPath, await readFile(d.ca), 0o644);
    await writeInRoot(root, SENDER as BPath, SENDER_SH, 0o755);
    await writeInRoot(root, `/etc/systemd/system/${UNIT}` as BPath, UNIT_TEXT, 0o644);
    await enable(root);
    log.warn(`the report is kept in the new system as ${OUTBOX_DIR}/${id}.json: ${UNIT} (curl) sends it to ${d.url} at the next boot`);
    return `${OUTBOX_DIR}/${id}.json in the new system`;
  } catch (e) {
    log.warn(`the report could not be kept in the new system (${(e as Error).message})`);
    return undefined;
  }
}

// enable: the unit's multi-user.target.wants link, as systemctl enable makes it (resolved inside the root).
async function enable(root: string): Promise<void> {
  const { hostDir, name } = await resolveParent(root, `/etc/systemd/system/multi-user.target.wants/${UNIT}` as BPath);
  await mkdir(hostDir, { recursive: true, mode: 0o755 });
  await rm(`${hostDir}/${name}`, { force: true });
  await symlink(`/etc/systemd/system/${UNIT}`, `${hostDir}/${name}`);
}
