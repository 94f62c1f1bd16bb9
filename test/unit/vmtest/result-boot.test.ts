import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ToolError } from '../../../src/errors.ts';
import type { Run } from '../../../src/system/exec.ts';
import { bootReason, bootResult, DEFAULT_MARKER, markerLine } from '../../../src/vmtest/result-boot.ts';

const work = () => fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-unit-rb-'));
const serialOf = (args: readonly string[]) => (args[args.indexOf('-serial') + 1] ?? '').replace(/^file:/, '');

// A fake QEMU: writes LOG to the serial file, then ends as END says.
const qemu = (log: string, end: 'poweroff' | 'timeout' | 'wait-for-stop', calls: string[][] = []): Run =>
	(async (tool, args, opts) => {
		calls.push([tool, ...args]);
		fs.writeFileSync(serialOf(args), log);
		if (end === 'timeout') throw new ToolError(tool, args, undefined, `timed out after ${opts?.timeoutMs} ms`, 'vmTest');
		if (end === 'wait-for-stop')
			await new Promise<void>((resolve, reject) => {
				const guard = setTimeout(() => reject(new Error('never stopped')), 3000);
				opts?.signal?.addEventListener('abort', () => {
					clearTimeout(guard);
					resolve();
				});
			});
		return { stdout: '', stderr: '', exitCode: end === 'wait-for-stop' ? -1 : 0 };
	}) as Run;

const marker = /^REIMAGE-TEST-MARKER version=2 /;

test('the marker is found on a console line (escape codes stripped); QEMU is stopped as soon as it shows', async () => {
	const calls: string[][] = [];
	const log = 'SeaBIOS\r\n\x1b[0m[  OK  ] Started x\r\nREIMAGE-TEST-MARKER version=2 id=abc\r\nlater\n';
	const b = await bootResult({
		disk: '/d.img',
		work: work(),
		firmware: 'bios',
		accel: 'tcg',
		marker,
		timeoutS: 60,
		run: qemu(log, 'wait-for-stop', calls),
	});
	assert.is(b.outcome, 'reached');
	assert.is(b.line, 'REIMAGE-TEST-MARKER version=2 id=abc');
	assert.is(b.marker, marker.source);
	const argv = calls[0]?.join(' ') ?? '';
	assert.not.match(argv, /-kernel/, 'the result boots from its own disk');
	assert.match(argv, /virtio-blk-pci,drive=d0,serial=VMTEST-RESULT,bootindex=0/);
	assert.match(argv, /-boot strict=on,reboot-timeout=0/);
	assert.match(
		bootReason(b, 60),
		/^the reimaged disk booted \(BIOS \(SeaBIOS\), TCG\) and printed the marker in [\d.]+ s: REIMAGE-TEST-MARKER/,
	);
});

test('a result that powers off without the marker (wrong identity, v1 still there) stopped; the reason names the marker and the last line', async () => {
	const log = 'GRUB\nREIMAGE-TEST-MARKER version=1 id=abc\nreboot: Power down\n';
	const b = await bootResult({
		disk: '/d.img',
		work: work(),
		firmware: 'bios',
		accel: 'tcg',
		marker,
		timeoutS: 60,
		run: qemu(log, 'poweroff'),
	});
	assert.is(b.outcome, 'stopped');
	assert.is(b.line, undefined);
	assert.match(
		bootReason(b, 60),
		/^the reimaged disk stopped after [\d.]+ s without printing the marker \/\^REIMAGE-TEST-MARKER version=2 \/ \(BIOS \(SeaBIOS\), TCG\); its last console line: "reboot: Power down"$/,
	);
});

test('a silent result times out; the reason says so and hints at console=ttyS0', async () => {
	const b = await bootResult({
		disk: '/d.img',
		work: work(),
		firmware: 'bios',
		accel: 'kvm',
		marker,
		timeoutS: 7,
		run: qemu('', 'timeout'),
	});
	assert.is(b.outcome, 'timeout');
	assert.equal(b.serialTail, []);
	assert.match(
		bootReason(b, 7),
		/did not print the marker .* within 7 s \(BIOS \(SeaBIOS\), KVM\); it printed nothing on the serial console \(is console=ttyS0/,
	);
});

test('UEFI boots with OVMF flash (a private copy of the variables) when OVMF is installed; any other QEMU failure is thrown', async () => {
	const calls: string[][] = [];
	const w = work();
	const ovmfThere = fs.existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd') || fs.existsSync('/usr/share/OVMF/OVMF_CODE.fd');
	if (ovmfThere) {
		const b = await bootResult({
			disk: '/d.img',
			work: w,
			firmware: 'efi',
			accel: 'tcg',
			marker,
			timeoutS: 9,
			run: qemu('x\n', 'poweroff', calls),
		});
		assert.match(bootReason(b, 9), /UEFI \(OVMF\), TCG/);
		const argv = calls[0]?.join(' ') ?? '';
		assert.match(argv, /-drive if=pflash,format=raw,unit=0,readonly=on,file=\/usr\/share\/OVMF\/OVMF_CODE/);
		assert.ok(argv.includes(`if=pflash,format=raw,unit=1,file=${w}/ovmf-vars.fd`));
	}
	const broken: Run = async (tool, args) => {
		throw new ToolError(tool, args, 1, 'qemu-system-x86_64: -drive: Could not open', 'vmTest');
	};
	await bootResult({ disk: '/d.img', work: w, firmware: 'bios', accel: 'tcg', marker, timeoutS: 9, run: broken }).then(
		() => assert.unreachable('a broken QEMU is not a verdict'),
		(e: Error) => assert.match(e.message, /Could not open/),
	);
});

test('the default marker is systemd reaching multi-user or graphical, or a login prompt', () => {
	const re = new RegExp(DEFAULT_MARKER);
	assert.is(
		markerLine('[  OK  ] Reached target \x1b[0;1;39mMulti-User System\x1b[0m.\n', re),
		'[  OK  ] Reached target Multi-User System.',
	);
	assert.ok(markerLine('debian login: ', re));
	assert.is(markerLine('[  OK  ] Reached target Local File Systems.\n', re), undefined);
});

test.run();
