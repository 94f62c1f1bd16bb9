// What the initramfs entry is told to do when the binary ends, and what is
// left for it should the binary die (the action file, see boot/boot.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { afterWriteAction, boot, continueOrReboot } from '../../../src/boot/boot.ts';
import { createLog } from '../../../src/util/log.ts';
import { sourceError } from '../../../src/errors.ts';
import { startEndpoint } from '../../helpers/endpoint.ts';

const quietLog = () => createLog({ write: () => {} }, Date.now, true);

function setup(cmdline: string, config?: object) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-boot-'));
	fs.writeFileSync(path.join(dir, 'cmdline'), cmdline);
	fs.mkdirSync(path.join(dir, 'config'));
	if (config) fs.writeFileSync(path.join(dir, 'config/config.json'), JSON.stringify(config));
	const o = {
		cmdline: path.join(dir, 'cmdline'),
		configDir: path.join(dir, 'config'),
		runBase: path.join(dir, 'run'),
		confirm: async () => false,
		bring: async () => {
			throw new Error('no bundle in this test');
		},
	};
	return { o, action: () => fs.readFileSync(path.join(dir, 'run/action'), 'utf8').trim() };
}

test("continue only with a root= to continue to; otherwise reboot, never the generator's emergency path", () => {
	assert.equal(continueOrReboot('rd.reimage=0 root=LABEL=root ro', quietLog()), { action: 'continue', code: 0 });
	assert.equal(continueOrReboot('rd.reimage rd.reimage.mode=plan console=ttyS0', quietLog()), { action: 'reboot', code: 0 });
	assert.equal(continueOrReboot('root= quiet', quietLog()).action, 'reboot');
});

test('not armed: continue with a root=, reboot without one', async () => {
	const withRoot = setup('root=LABEL=root rd.reimage=0\n');
	assert.equal(await boot(withRoot.o, quietLog()), { action: 'continue', code: 0 });
	const noRoot = setup('rd.reimage=0 console=ttyS0\n');
	assert.equal(await boot(noRoot.o, quietLog()), { action: 'reboot', code: 0 });
});

test('a failure before the point of no return reboots, and "reboot" is what a crash would find in the action file', async () => {
	const bad = setup('rd.reimage rd.reimage.bundle=LABEL=R:/b\n', { mode: 'auto', surprise: true });
	const r = await boot(bad.o, quietLog());
	assert.equal(r, { action: 'reboot', code: 2 });
	assert.is(bad.action(), 'reboot');
});

test('after the point of no return: never reboot into a half-written disk', () => {
	assert.is(afterWriteAction(undefined), 'halt');
	assert.is(afterWriteAction({ onFailure: 'reboot' }), 'halt');
	assert.is(afterWriteAction({ onFailure: 'shell' }), 'shell');
	assert.is(afterWriteAction({ onFailure: 'poweroff' }), 'poweroff');
});

test('the bundle could not be fetched (exit 9): the failure document still reaches reportUrl, and the machine reboots', async () => {
	const endpoint = await startEndpoint<{ exitCode: number }>();
	try {
		const reportUrl = endpoint.url('/r');
		const s = setup('rd.reimage rd.reimage.bundle=http://10.0.2.2:1/b/\n', { allowUnsigned: true, reportUrl });
		const bring = async () => {
			throw sourceError('fetching manifest.json from http://10.0.2.2:1/b/ failed');
		};
		const r = await boot(
			{ ...s.o, bring, failureDoc: (e) => ({ exitCode: (e as { code: number }).code, outcome: 'refused' }) },
			quietLog(),
		);
		assert.equal(r, { action: 'reboot', code: 9 });
		assert.equal(endpoint.got, [{ exitCode: 9, outcome: 'refused' }]);
	} finally {
		await endpoint.stop();
	}
});

test('refused before the report path was set up (an unknown kernel argument, a mode the policy does not allow, no bundle location): the refusal reaches reportUrl; an unarmed boot reports nothing', async () => {
	const endpoint = await startEndpoint<{ exitCode: number }>();
	try {
		const reportUrl = endpoint.url('/r');
		const doc = (e: unknown) => ({ exitCode: (e as { code: number }).code, outcome: 'refused' });
		for (const [cmdline, config] of [
			['rd.reimage rd.reimage.bundel=LABEL=X:/b\n', { allowUnsigned: true, reportUrl }],
			['rd.reimage rd.reimage.mode=auto\n', { allowUnsigned: true, reportUrl, bundle: 'LABEL=X:/b', mode: 'plan' }],
			['rd.reimage\n', { allowUnsigned: true, reportUrl }],
		] as const) {
			const s = setup(cmdline, config);
			const r = await boot({ ...s.o, failureDoc: doc }, quietLog());
			assert.equal(r, { action: 'reboot', code: 2 }, cmdline);
		}
		assert.equal(
			endpoint.got,
			[1, 2, 3].map(() => ({ exitCode: 2, outcome: 'refused' })),
		);
		const quiet = setup('rd.reimage=0 rd.reimage.bundel=x\n', { allowUnsigned: true, reportUrl });
		assert.is((await boot({ ...quiet.o, failureDoc: doc }, quietLog())).code, 2);
		assert.is(endpoint.got.length, 3, 'an unarmed boot sent a report');
	} finally {
		await endpoint.stop();
	}
});

test.run();
