// finish: the report is written into the new system before it is unmounted;
// what the unmount then does to LVM volume groups (the new system's, taken
// down before the reboot) is not in the report, so it is logged on the console.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Restored, Run, Trail } from '../../../src/stages/context.ts';
import { finish } from '../../../src/stages/finish.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys } from '../../helpers/fake-sys.ts';

test("finish: the new system's LVM deactivation (after the report) is logged, and the report keeps what came before", async () => {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-finish-'));
	const sys = fakeSys().script('sync', {});
	let text = '';
	const log = createLog({ write: (t) => void (text += t) });
	const notes = ['LVM: volume group vgkiosk (u1) on /dev/vda5 activated for the new system'];
	const t = { command: 'run', started: new Date(), timings: [], notes, saved: [] } as unknown as Trail;
	const restored: Restored = { root, entries: [], unmount: async () => void notes.push('LVM: volume group vgkiosk deactivated') };
	try {
		const report = await finish({ o: {}, log, sys } as unknown as Run, restored, t);
		assert.is(report.outcome, 'success');
		const written = JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')) as { notes: string[] };
		assert.equal(written.notes, ['LVM: volume group vgkiosk (u1) on /dev/vda5 activated for the new system']);
		assert.match(text, /\] LVM: volume group vgkiosk deactivated \(the new system, before the reboot\)\n/);
		assert.not.match(text, /activated for the new system \(the new system/, 'only what the unmount added');
		assert.equal(sys.calls, ['sync']);
	} finally {
		fs.rmSync(root, { recursive: true, force: true });
		sys.done();
	}
});

test.run();
