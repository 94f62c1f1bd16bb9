import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findRecovery, RECOVERY_TYPE } from '../../../src/capture/recovery.ts';

const part = (n: number, o: { name?: string; type?: string; uuid?: string } = {}) => ({
	node: `/dev/sda${n}`,
	start: n * 2048,
	size: 2048,
	type: o.type ?? '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
	...o,
});
const table = (parts: ReturnType<typeof part>[], label = 'gpt') => ({ label, id: 'x', device: '/dev/sda', partitions: parts });

const refused = (fn: () => unknown, re: RegExp, code = 2) => {
	try {
		fn();
		assert.unreachable('accepted');
	} catch (e) {
		assert.is((e as { code: number }).code, code, (e as Error).message);
		assert.match((e as Error).message, re);
	}
};

test('the recovery partition: named reimage-recovery, of the recovery type GUID, on GPT', () => {
	const ok = table([part(1, { name: 'root' }), part(3, { name: 'reimage-recovery', type: RECOVERY_TYPE.toUpperCase(), uuid: 'CCCC' })]);
	assert.is(findRecovery('/dev/sda', ok).node, '/dev/sda3');
	refused(
		() => findRecovery('/dev/sda', table([part(1)])),
		/has no partition named reimage-recovery: create it in free space \(e\.g\. sgdisk -n 0:0:0 -t 0:8ec7b804/,
	);
	refused(
		() => findRecovery('/dev/sda', table([part(2, { name: 'reimage-recovery' })])),
		/has type 0fc63daf-.*, not the recovery type 8ec7b804-ecd7-438d-a301-c3117601ae5d/,
	);
	refused(
		() =>
			findRecovery(
				'/dev/sda',
				table([part(2, { name: 'reimage-recovery', type: RECOVERY_TYPE }), part(3, { name: 'reimage-recovery', type: RECOVERY_TYPE })]),
			),
		/2 partitions named reimage-recovery/,
	);
	refused(() => findRecovery('/dev/sda', table([part(3, { name: 'reimage-recovery', type: RECOVERY_TYPE })])), /has no PARTUUID/);
	refused(() => findRecovery('/dev/sda', table([part(1)], 'dos')), /dos partition table: a recovery partition needs GPT/);
});

test.run();
