// The report as hawkBit DDI action feedback (--report-format hawkbit), and hawkBit's token schemes in --auth-file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hawkbitFeedback, shapeReport } from '../../../src/net/hawkbit.ts';
import { parseAuth } from '../../../src/net/options.ts';

const success = {
	outcome: 'success',
	exitCode: 0,
	phase: 'run',
	written: true,
	finished: '2026-12-03T16:00:00.000Z',
	stages: [{}, {}, {}],
	device: { node: '/dev/vda', model: 'QEMU', serial: 'KIOSK42' },
	write: { bytes: 1024, seconds: 2 },
};

test('success: closed, finished success, progress from the stages done, details one line each', () => {
	assert.equal(hawkbitFeedback(success), {
		timestamp: Date.parse('2026-12-03T16:00:00.000Z'),
		status: {
			execution: 'closed',
			result: { finished: 'success', progress: { cnt: 3, of: 3 } },
			code: 0,
			details: ['reimage success: exit 0, phase run, disk written', 'device /dev/vda (QEMU, serial KIOSK42)', 'wrote 1024 bytes in 2 s'],
		},
	});
});

test('refused (exit 9 before the flow) and failed: closed with failure and the sentence; a plan stays open', () => {
	const refused = hawkbitFeedback({
		outcome: 'refused',
		exitCode: 9,
		phase: 'preflight',
		written: false,
		error: { message: 'fetching manifest.json failed' },
	});
	assert.equal(refused.status, {
		execution: 'closed',
		result: { finished: 'failure' },
		code: 9,
		details: ['reimage refused: exit 9, phase preflight, disk not written', 'fetching manifest.json failed'],
	});
	assert.is((hawkbitFeedback({ outcome: 'failed', exitCode: 10 }).status as { result: { finished: string } }).result.finished, 'failure');
	assert.equal((hawkbitFeedback({ outcome: 'planned' }).status as { execution: string; result: unknown }).result, { finished: 'none' });
	assert.equal(shapeReport('reimage', success), success);
	assert.equal(shapeReport(undefined, success), success);
});

test('auth file: hawkBit target and gateway tokens', () => {
	assert.is(parseAuth('targettoken abc123\n', 'f'), 'TargetToken abc123');
	assert.is(parseAuth('GatewayToken xyz', 'f'), 'GatewayToken xyz');
});

test.run();
