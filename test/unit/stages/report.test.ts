import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Manifest } from '../../../src/bundle/manifest.ts';
import { failureDoc, toJson } from '../../../src/cli/result.ts';
import { ReimageError } from '../../../src/errors.ts';
import type { Bundle } from '../../../src/bundle/read.ts';
import type { Preflight, RunOptions, Scanned, Trail } from '../../../src/stages/context.ts';
import type { Scan } from '../../../src/retention/scan.ts';
import { buildReport, confirmQuestion, planFacts } from '../../../src/stages/report.ts';
import { bpath } from '../../../src/util/bytes.ts';
import { checkResult } from '../../helpers/schema.ts';
import { good } from '../_manifest.ts';

const MiB = 1 << 20;

// fakeTrail: what preflight and the scan leave for a plan of a 1 MiB image on a 64 MiB disk keeping one file.
export function fakeTrail(over: Partial<Trail> = {}, scanOver: Partial<Scan> = {}): Trail {
	const manifest = good() as Manifest;
	const found = [
		{
			path: bpath('/etc/machine-id'),
			host: bpath('/x/etc/machine-id'),
			kind: 'file' as const,
			st: { size: 33n, blksize: 4096n, blocks: 8n } as never,
			line: 3,
			sparse: false,
		},
	];
	const pre: Preflight = {
		bundle: { dir: '/b', manifest, imagePath: '/b/image.raw.zst' } as Bundle,
		disk: {
			path: '/dev/loop9',
			node: '/dev/loop9',
			name: 'loop9',
			dev: '7:9',
			size: 64 * MiB,
			sectorSize: 512,
			readOnly: false,
			removable: false,
			model: '',
			serial: '',
			wwn: '',
			backingFile: '/tmp/old.img',
			isPartition: false,
			partitions: [],
		} as never,
		list: { name: 'kiosk.list', entries: [] },
		oldParts: [
			{ node: '/dev/loop9p1', number: 1, fstype: 'ext4', label: 'root' },
			{ node: '/dev/loop9p2', number: 2, fstype: 'ext4', partlabel: 'data' },
		],
		kept: [],
		keep: { places: [], key: 'k' },
	};
	const scanned: Scanned = {
		ids: { users: new Map(), groups: new Map() } as never,
		scan: {
			found: found as never,
			missingOptional: [{ text: '?/etc/opt-thing', line: 5 } as never],
			skipped: [],
			bytes: 33,
			allocated: 4096,
			...scanOver,
		},
		unmount: async () => {},
	};
	return {
		command: 'plan',
		phase: 'verify',
		started: new Date('2026-01-01T00:00:00Z'),
		timings: [
			{ stage: 'preflight', seconds: 0.1 },
			{ stage: 'scan', seconds: 0.2 },
		],
		notes: [],
		saved: [],
		pre,
		scanned,
		proof: 'the compressed sha256 before writing',
		...over,
	};
}

export const options = (over: Partial<RunOptions> = {}): RunOptions => ({
	bundle: '/b',
	target: '/dev/loop9',
	yes: false,
	grow: false,
	verifyWritten: false,
	allowDowngrade: false,
	trust: [],
	oldMounts: [],
	runBase: '/run/x',
	confirm: async () => true,
	keep: [],
	keepInBundle: true,
	...over,
});

test('a plan report carries the facts the plan text needs and matches the schema', async () => {
	const ctx = fakeTrail();
	const plan = await planFacts(options(), ctx, async () => 4096 * MiB, 4096);
	assert.ok(plan);
	assert.equal(
		plan.partitionsNow.map((p) => p.node),
		['/dev/loop9p1', '/dev/loop9p2'],
	);
	assert.equal(plan.partitionsAfter[0], { number: 1, start: 2048 * 512, size: 100 * 512, name: undefined, fstype: 'ext4', label: 'root' });
	assert.equal(plan.mountsNew, [{ path: '/', spec: 'LABEL=root', partition: 1, fstype: 'ext4' }]);
	assert.is(plan.unused.bytes, 63 * MiB);
	assert.is(plan.ram.available, 4096 * MiB);
	assert.ok(plan.ram.need > 192 * MiB);
	const doc = checkResult(toJson(buildReport(ctx, 'planned', undefined, plan)));
	assert.is(doc.command, 'plan');
	assert.is(doc.outcome, 'planned');
	assert.is(doc.exitCode, 0);
	assert.is(doc.phase, 'verify');
	assert.is(doc.written, false);
});

test('--grow in a plan gives the last partition the room past the image, less a MiB', async () => {
	const plan = await planFacts(options({ grow: true }), fakeTrail(), async () => 0, 4096);
	assert.is(plan?.partitionsAfter[0]?.size, 100 * 512 + 62 * MiB);
	assert.is(plan?.unused.grow, true);
});

test('a refused run: the report names the stage it stopped in; the error document keeps it and adds name and facts', () => {
	const ctx = fakeTrail({ command: 'run', phase: 'scan' });
	const err = new ReimageError('retention', 'retained entry /etc/x is missing: fix the list', { path: '/etc/x' });
	err.report = buildReport(ctx, 'refused', { message: err.message, code: err.code });
	const doc = checkResult(toJson(failureDoc('run', 'preflight', err)));
	assert.is(doc.phase, 'scan');
	assert.is(doc.exitCode, 5);
	assert.equal(doc.error, { code: 5, name: 'retention', message: err.message, facts: { path: '/etc/x' } });
	assert.is(doc.written, false);
});

test('a failure after the point of no return is "failed", written, 10 or 11', () => {
	const ctx = fakeTrail({ command: 'run', phase: 'settle' });
	const err = new ReimageError('afterWrite', 'partitions did not settle; run the same command again to finish');
	err.report = buildReport(ctx, 'failed', { message: err.message, code: err.code });
	const doc = checkResult(toJson(failureDoc('run', 'preflight', err)));
	assert.equal([doc.outcome, doc.written, doc.exitCode, doc.phase], ['failed', true, 11, 'settle']);
});

test('the confirmation names the partitions that will be replaced and how many entries are kept', () => {
	const t = fakeTrail({ command: 'run' });
	if (!t.pre || !t.scanned) throw new Error('fixture');
	const q = confirmQuestion(t.pre, t.scanned, '/dev/loop9 (loop of /tmp/old.img, no serial, 64 MiB)');
	assert.match(q, /EVERYTHING on \/dev\/loop9 .* will be destroyed and replaced/);
	assert.match(q, /Replaced: \/dev\/loop9p1 \(root\), \/dev\/loop9p2 \(data\)\./);
	assert.match(q, /1 retained entry from kiosk\.list will be kept\./);
	const empty = fakeTrail({}, { found: [] });
	if (!empty.pre || !empty.scanned) throw new Error('fixture');
	const none = confirmQuestion(empty.pre, empty.scanned, 'd');
	assert.match(none, /No retained entries will be kept \(--no-retain\)\./);
});

test('a factory reset (a captured bundle) names what is lost, what is kept, and each retained entry', () => {
	const t = fakeTrail({ command: 'run' });
	if (!t.pre || !t.scanned) throw new Error('fixture');
	const layout = {
		size: 64 << 20,
		sectorSize: 512,
		label: 'gpt',
		id: 'd',
		partitions: [
			{ number: 1, start: 2048, size: 2048, type: 't', name: 'root', kept: false },
			{ number: 2, start: 4096, size: 2048, type: 't', name: 'data', kept: true },
			{ number: 3, start: 6144, size: 2048, type: 't', name: 'reimage-recovery', kept: true },
		],
	};
	const kept = [
		{
			number: 2,
			node: '/dev/loop9p2',
			start: 4096,
			size: 2048,
			type: 't',
			uuid: 'u2',
			name: 'data',
			bytes: [4096 * 512, 6144 * 512] as [number, number],
			why: ['PARTUUID=u2'],
		},
	];
	const pre = { ...t.pre, kept, bundle: { ...t.pre.bundle, manifest: { ...t.pre.bundle.manifest, layout } } };
	const q = confirmQuestion(pre, t.scanned, '/dev/loop9 (loop of /tmp/old.img, no serial, 64 MiB)');
	assert.match(q, /FACTORY RESET of \/dev\/loop9 .*: the system goes back to its factory state\./);
	assert.match(q, /LOST \(everything on them is replaced\): \/dev\/loop9p1 \(root\)\./);
	assert.match(q, /KEPT as they are, never written: \/dev\/loop9p2 \(data\)\./);
	assert.match(q, /  kept: \/etc\/machine-id\n/);
});

test('with a kept partition the confirmation, the plan facts and the report say it survives, and the report passes the contract', async () => {
	const t = fakeTrail({ command: 'plan' });
	if (!t.pre || !t.scanned) throw new Error('fixture');
	t.pre.kept = [
		{
			number: 2,
			node: '/dev/loop9p2',
			start: 43008,
			size: 86016,
			type: 'L',
			uuid: 'AAAAAAAA-0000-0000-0000-000000000002',
			name: 'data',
			bytes: [43008 * 512, 129024 * 512],
			why: ['PARTLABEL=data'],
		},
	];
	t.pre.bundle.manifest.table.partitions = t.pre.bundle.manifest.table.partitions.filter((p) => p.number === 1);
	const q = confirmQuestion(t.pre, t.scanned, '/dev/loop9');
	assert.match(q, /Everything but the kept partitions on \/dev\/loop9 will be destroyed and replaced/);
	assert.match(q, /Replaced: \/dev\/loop9p1 \(root\)\.\nKept, never written: \/dev\/loop9p2 \(data\)\./);
	const plan = await planFacts(options(), t, async () => 1 << 30, 4096);
	assert.equal(
		plan?.partitionsNow.map((p) => [p.number, p.kept === true]),
		[
			[1, false],
			[2, true],
		],
	);
	assert.equal(
		plan?.partitionsAfter.map((p) => [p.number, p.start, p.kept === true]),
		[
			[1, 2048 * 512, false],
			[2, 43008 * 512, true],
		],
	);
	const doc = checkResult(toJson(buildReport(t, 'planned', undefined, plan)));
	assert.equal(
		(doc.kept as { partuuid: string; numberAfter: number; why: string[] }[]).map((k) => [k.partuuid, k.numberAfter, k.why]),
		[['AAAAAAAA-0000-0000-0000-000000000002', 2, ['PARTLABEL=data']]],
	);
});

test.run();
