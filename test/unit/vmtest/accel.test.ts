import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ToolError } from '../../../src/errors.ts';
import type { Run } from '../../../src/system/exec.ts';
import { chooseAccel, PROBE_MS, probeSector } from '../../../src/vmtest/accel.ts';

const work = () => fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-unit-accel-'));
const never: Run = async () => assert.unreachable('no probe when the environment decides') as never;

test('the probe guest is one boot sector that prints KVM-OK to COM1 and leaves through isa-debug-exit', () => {
	const b = probeSector();
	assert.is(b.length, 512);
	assert.equal([b[510], b[511]], [0x55, 0xaa]);
	// mov si, msg: the message right after the code, at 0x7c00 + its offset.
	const msg = b.indexOf('KVM-OK\n');
	assert.is(b.readUInt16LE(4), 0x7c00 + msg);
	assert.is(b[msg + 7], 0);
	assert.is(b.indexOf(Buffer.from([0xe6, 0xf4])) > 0, true, 'out 0xf4, al');
});

test('REIMAGE_VM_ACCEL decides without a probe; a bad value is a sentence', async () => {
	assert.equal(await chooseAccel(work(), { REIMAGE_VM_ACCEL: 'tcg' }, never), { accel: 'tcg', why: 'REIMAGE_VM_ACCEL=tcg' });
	assert.equal(await chooseAccel(work(), { REIMAGE_VM_ACCEL: 'kvm' }, never), { accel: 'kvm', why: 'REIMAGE_VM_ACCEL=kvm' });
	await chooseAccel(work(), { REIMAGE_VM_ACCEL: 'hvf' }, never).then(
		() => assert.unreachable(),
		(e: Error) => assert.is(e.message, 'REIMAGE_VM_ACCEL=hvf is not an accelerator: set kvm, tcg or auto (or unset it)'),
	);
});

const usableKvm = (() => {
	try {
		fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
		return true;
	} catch {
		return false;
	}
})();

test('with a usable /dev/kvm: KVM when the probe finishes, TCG when it hangs (the probe is bounded)', async () => {
	if (!usableKvm) {
		assert.equal((await chooseAccel(work(), {}, never)).accel, 'tcg');
		return;
	}
	const seen: { args: readonly string[]; timeoutMs?: number }[] = [];
	const finishes: Run = async (_t, args, o) => {
		seen.push({ args, ...(o?.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
		return { stdout: '', stderr: '', exitCode: 1 };
	};
	assert.equal(await chooseAccel(work(), {}, finishes), { accel: 'kvm', why: 'a probe guest ran under KVM' });
	assert.is(seen[0]?.timeoutMs, PROBE_MS);
	assert.match(seen[0]?.args.join(' ') ?? '', /^-accel kvm .*-device isa-debug-exit,iobase=0xf4,iosize=1$/);
	const hangs: Run = async (t, args) => {
		throw new ToolError(t, args, undefined, `timed out after ${PROBE_MS} ms`);
	};
	assert.equal(await chooseAccel(work(), { REIMAGE_VM_ACCEL: 'auto' }, hangs), {
		accel: 'tcg',
		why: 'a probe guest did not finish under KVM within 5 s',
	});
});

test.run();
