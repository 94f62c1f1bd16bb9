import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Manifest } from '../../../src/bundle/manifest.ts';
import { ReimageError } from '../../../src/errors.ts';
import { activate, checkLvm, targetGroups } from '../../../src/stages/lvm.ts';
import { mountPlan } from '../../../src/stages/mounts.ts';
import { only } from '../../../src/system/lvm.ts';
import type { PartIdentity } from '../../../src/target/partitions.ts';
import { createCleanup } from '../../../src/util/cleanup.ts';
import { createLog } from '../../../src/util/log.ts';
import { fakeSys, TOOLS, type FakeSys } from '../../helpers/fake-sys.ts';

// Captured on the build host (lvm2 2.03.16): pvs and lvs of a PV /dev/loop0p1 in VG vgt with LVs root and data.
const PVS = fs.readFileSync(path.join(TOOLS, 'pvs-vgt.txt'), 'utf8');
const LVS = fs.readFileSync(path.join(TOOLS, 'lvs-vgt.txt'), 'utf8');
const PV = '/dev/loop0p1';
const UUID = 'H4LyKP-b44r-NAp1-ZsLX-2Trt-vgdf-Cef9WR';
const parts: PartIdentity[] = [
	{ node: '/dev/loop0p2', number: 2, label: 'boot', fstype: 'ext4' },
	{ node: PV, number: 1, fstype: 'LVM2_member' },
];
const cfg = only([PV]);
const pvsArgv = ['lvm', 'pvs', '--config', cfg, '--reportformat', 'json', '-o', 'pv_name,vg_name,vg_uuid,pv_count'];
const lvsArgv = ['lvm', 'lvs', '--config', cfg, '--reportformat', 'json', '-o', 'vg_name,vg_uuid,lv_name,lv_dm_path'];
const up = (ro: boolean) => ['lvm', 'vgchange', '--config', cfg + (ro ? ' activation{read_only_volume_list=["vgt"]}' : ''), '-ay', 'vgt'];
const down = ['lvm', 'vgchange', '--config', cfg, '-an', 'vgt'];

function scripted(): FakeSys {
	return fakeSys()
		.script(pvsArgv, { stdout: PVS })
		.script(lvsArgv, { stdout: LVS })
		.script(['blkid', '-p', '-o', 'export', '/dev/mapper/vgt-root'], { stdout: 'LABEL=root\nUUID=AAAA-1\nTYPE=ext4\n' })
		.script(['blkid', '-p', '-o', 'export', '/dev/mapper/vgt-data'], { stdout: 'UUID=bbbb-2\nTYPE=xfs\n' });
}

const quiet = () => createLog({ write: () => true } as never, Date.now, true);

test('only: lvm sees exactly the given devices (regex-escaped), and nothing when given none', () => {
	assert.match(only(['/dev/loop0p1']), /filter=\["a\|\^\/dev\/loop0p1\$\|","r\|\.\*\|"\]/);
	assert.match(only(['/dev/mapper/a.b']), /a\\\.b/);
	assert.match(only([]), /filter=\["r\|\.\*\|"\]/);
});

test('activate: the target VG is activated read-only for the old system, its LVs probed as identities, deactivated after', async () => {
	const sys = scripted().script(up(true)).script(down);
	const notes: string[] = [];
	try {
		const a = await activate(parts, 'ro', 'retention', createCleanup(quiet()), notes, sys);
		assert.equal(
			a.parts.map((p) => [p.node, p.number, p.lv, p.label, p.uuid, p.fstype]),
			[
				['/dev/mapper/vgt-data', 1, 'vgt/data', undefined, 'bbbb-2', 'xfs'],
				['/dev/mapper/vgt-root', 1, 'vgt/root', 'root', 'aaaa-1', 'ext4'],
			],
		);
		assert.ok(sys.calls.includes(up(true).join(' ')));
		assert.not.ok(sys.calls.includes(down.join(' ')));
		await a.deactivate();
		assert.is(sys.calls.at(-1), down.join(' '));
		assert.match(
			notes.join('\n'),
			new RegExp(`volume group vgt \\(${UUID}\\) on ${PV} activated read-only for the old system\\n.*vgt deactivated`),
		);
	} finally {
		sys.done();
	}
});

test('activate: a failure to deactivate the new system VG is an error naming it (exit 11), and noted', async () => {
	const sys = scripted().script(up(false)).script(down, { exitCode: 5, stderr: 'Logical volume vgt/root in use.' });
	const notes: string[] = [];
	try {
		const a = await activate(parts, 'rw', 'afterWrite', createCleanup(quiet()), notes, sys);
		const e = await a.deactivate().then(
			() => undefined,
			(x: unknown) => x,
		);
		assert.instance(e, ReimageError);
		assert.is((e as ReimageError).code, 11);
		assert.match((e as Error).message, /volume group vgt of the new system could not be deactivated \(.*in use.*\): stop what holds/);
		assert.match(notes.join('\n'), /vgt could not be deactivated/);
	} finally {
		sys.done();
	}
});

test('activate: no PV on the target runs no lvm command at all', async () => {
	const sys = fakeSys();
	try {
		const a = await activate([parts[0]!], 'rw', 'afterWrite', createCleanup(quiet()), [], sys);
		assert.equal(a.parts, []);
		assert.equal(sys.calls, []);
	} finally {
		sys.done();
	}
});

test('targetGroups: a VG spanning another disk, and two VGs of one name on the target, are refused with the reason', async () => {
	const span = fakeSys().script(pvsArgv, { stdout: PVS.replace('"pv_count":"1"', '"pv_count":"2"') });
	try {
		await targetGroups(parts, 'target', span).then(
			() => assert.unreachable(),
			(e: ReimageError) => {
				assert.is(e.code, 4);
				assert.match(
					e.message,
					new RegExp(`volume group vgt \\(${UUID}\\) has 2 physical volumes but only 1 on the target \\(${PV}\\): it spans another disk`),
				);
			},
		);
	} finally {
		span.done();
	}
	const two = [...parts, { node: '/dev/loop0p3', number: 3, fstype: 'LVM2_member' }];
	const row = PVS.match(/\{"pv_name".*\}/)?.[0] ?? '';
	const twin = fakeSys().script(
		['lvm', 'pvs', '--config', only([PV, '/dev/loop0p3']), '--reportformat', 'json', '-o', 'pv_name,vg_name,vg_uuid,pv_count'],
		{
			stdout: PVS.replace(row, `${row},${row.replace(PV, '/dev/loop0p3').replace(UUID, 'OTHER-UUID')}`),
		},
	);
	try {
		await targetGroups(two, 'target', twin).then(
			() => assert.unreachable(),
			(e: Error) => assert.match(e.message, /two volume groups named vgt are on the target .*: rename one with vgrename/),
		);
	} finally {
		twin.done();
	}
});

const manifest = (vg: string) => ({ table: { partitions: [{ number: 1, lvm: { vg, uuid: 'NEW', lvs: [] } }] } }) as unknown as Manifest;
const allArgv = [
	'lvm',
	'pvs',
	'--config',
	'devices{obtain_device_list_from_udev=0 external_device_info_source="none"}',
	'--reportformat',
	'json',
	'-o',
	'pv_name,vg_name,vg_uuid,pv_count',
];

test("checkLvm: the image's VG name on another disk is refused before writing; the target's own old VG of that name is not", async () => {
	const other = PVS.replace(PV, '/dev/sdb1');
	const sys = fakeSys().script(pvsArgv, { stdout: PVS }).script(allArgv, { stdout: other });
	try {
		await checkLvm(manifest('vgt'), parts, sys).then(
			() => assert.unreachable(),
			(e: ReimageError) => {
				assert.is(e.code, 4);
				assert.match(
					e.message,
					new RegExp(
						`volume group vgt is also on /dev/sdb1, which is not on the target.*rename the other one \\(vgrename ${UUID} NEWNAME\\)`,
					),
				);
			},
		);
	} finally {
		sys.done();
	}
	const same = fakeSys().script(pvsArgv, { stdout: PVS }).script(allArgv, { stdout: PVS });
	try {
		await checkLvm(manifest('vgt'), parts, same);
		await checkLvm(manifest('other'), parts, same);
	} finally {
		same.done();
	}
	const none = fakeSys();
	try {
		await checkLvm({ table: { partitions: [{ number: 1 }] } } as unknown as Manifest, [parts[0]!], none);
		assert.equal(none.calls, []);
	} finally {
		none.done();
	}
});

test('mountPlan: a line on a logical volume (VG/LV) is mounted from its device-mapper node; unmounting deactivates last', async () => {
	const base = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-lvm-plan-'));
	const sys = scripted()
		.script(up(false))
		.script(down)
		.script(['mount', '-t', 'ext4', '-o', 'rw', '/dev/mapper/vgt-root', base])
		.script(['umount', base]);
	try {
		const { missing, umountAll } = await mountPlan(
			parts,
			[{ path: '/', kind: 'UUID', value: 'AAAA-1', fstype: 'ext4', lv: 'vgt/root' }],
			base,
			'rw',
			createCleanup(quiet()),
			'afterWrite',
			sys,
		);
		assert.equal(missing, []);
		await umountAll();
		assert.equal(sys.calls.slice(-2), [`umount ${base}`, down.join(' ')]);
		// The same UUID on another LV is not this line.
		const s2 = scripted().script(up(false)).script(down);
		const r = await mountPlan(
			parts,
			[{ path: '/', kind: 'UUID', value: 'AAAA-1', fstype: 'ext4', lv: 'vgt/data' }],
			base,
			'rw',
			createCleanup(quiet()),
			'afterWrite',
			s2,
		);
		assert.equal(
			r.missing.map((l) => l.path),
			['/'],
		);
		await r.umountAll();
		s2.done();
	} finally {
		sys.done();
		fs.rmSync(base, { recursive: true, force: true });
	}
});

test.run();
