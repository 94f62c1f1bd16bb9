// Power-loss re-entry: a run whose bundle is on a kept partition of the
// target is cut (SIGKILL) after its point of no return; a second run with the
// same bundle finds the re-entry record there, takes the retained set from the
// saved archive (never from the half-written disk), writes again and restores.
// A bundle by URL has no medium: a kept partition of the target holds the set,
// the record and the reports the endpoint did not take.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Endpoint, startEndpoint } from '../helpers/endpoint.ts';
import { closedPort } from '../helpers/ports.ts';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { BIN, copyBundleFiles, killedAt, reimage, RUNDIR, sharedBundle, tamperedRange } from '../helpers/reimage.ts';
import { type Nginx, reimageAsync, startNginx } from '../helpers/web.ts';
import { checkResult } from '../helpers/schema.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	getXattr,
	mount,
	partNode,
	partNumberByName,
	partxUpdate,
	sfdiskJson,
	sh,
	sha256,
	tmpDir,
	umount,
} from '../helpers/sys.ts';

const t = suite('power-loss re-entry');
const MiB = 1 << 20;
const HOME_TYPE = '933AC7E1-2EB4-4F13-B844-0E14E2AEF915';

/** The old disk grown by a /home partition (3, PARTLABEL home, ext4) that carries BUNDLE in /bundle when given. */
function diskWithBundle(bundle?: string): { file: string; dev: string; spec: string } {
	// A fresh PARTUUID: another disk carrying the same one would make the bundle location ambiguous.
	const uuid = randomUUID();
	const file = freshOldDisk();
	fs.truncateSync(file, 400 * MiB);
	sh('sfdisk', ['-q', '--relocate', 'gpt-bak-std', file]);
	sh('sfdisk', ['-q', '--append', file], { input: `start=${320 * 2048}, size=${60 * 2048}, type=${HOME_TYPE}, uuid=${uuid}, name=home\n` });
	sh('mkfs.ext4', ['-q', '-F', '-L', 'home', '-E', `offset=${320 * MiB}`, file, `${60 * 1024}k`]);
	const dev = attachLoop(file);
	if (bundle) {
		const home = mount(partNode(dev, 3), { rw: true });
		copyBundleFiles(bundle, path.join(home, 'bundle'));
		umount(home);
	}
	return { file, dev, spec: `PARTUUID=${uuid}:/bundle` };
}

/** Kill the run when its log matches WHEN; undo what the killed run left mounted. */
async function cut(args: string[], when: RegExp, env: NodeJS.ProcessEnv = process.env) {
	const r = await killedAt(args, when, env);
	assert.ok(r.acted, r.stderr);
	assert.is(r.status, null, 'the run was not killed');
	return r;
}

/** The re-entry directory on the kept partition (beside the bundle, or at its root: AT): FN gets it (mounted read-write). */
function onKept<T>(dev: string, fn: (dir: string) => T, at = 'bundle'): T {
	partxUpdate(dev);
	const dir = mount(partNode(dev, 3), { rw: true });
	try {
		const kept = path.join(dir, at, 'reimage-retained');
		const [key] = fs.existsSync(kept) ? fs.readdirSync(kept) : [];
		return fn(key ? path.join(kept, key) : '');
	} finally {
		umount(dir);
	}
}

/** The new system carries the old identity: bytes, mode, owner mapped by name, xattrs. */
function checkIdentity(dev: string, machineId: string): void {
	partxUpdate(dev);
	const root = mount(partNode(dev, partNumberByName(sfdiskJson(dev), 'root')));
	try {
		assert.is(fs.readFileSync(path.join(root, 'etc/machine-id'), 'utf8'), machineId);
		const key = path.join(root, 'etc/ssl/private/site.key');
		const st = fs.lstatSync(key);
		assert.is((st.mode & 0o7777).toString(8), '640');
		assert.equal([st.uid, st.gid], [0, 1200]);
		assert.is(getXattr(key, 'user.reimage.test')?.toString(), 'hello');
		assert.ok(fs.existsSync(path.join(root, 'etc/ssh')));
	} finally {
		umount(root);
	}
}

function oldMachineId(dev: string): string {
	const root = mount(partNode(dev, partNumberByName(sfdiskJson(dev), 'root')));
	try {
		return fs.readFileSync(path.join(root, 'etc/machine-id'), 'utf8');
	} finally {
		umount(root);
	}
}

t('cut during the write: the second run writes again and restores every entry from the saved archive', async () => {
	const fx = fixtures();
	const { file, dev, spec } = diskWithBundle(sharedBundle('zstd'));
	try {
		const id = oldMachineId(dev);
		const args = ['run', '--bundle', spec, '--target', dev, '--retain', fx.list, '--yes'];
		await cut(args, /write cut point reached/, { ...process.env, REIMAGE_TEST_CUT: 'write' });
		const again = reimage([...args, '--json']);
		assert.is(again.status, 0, describe(again));
		assert.match(again.stderr, /re-entry: .*attempt 2/);
		const r = checkResult(again.stdout) as { reentry?: { attempt: number; retainedFrom: string } };
		assert.is(r.reentry?.attempt, 2);
		assert.match(r.reentry?.retainedFrom ?? '', /reimage-retained/);
		checkIdentity(dev, id);
		onKept(dev, (d) => assert.is(d, '', 'the record and set were not removed after the restore'));
	} finally {
		detachLoop(dev);
	}
	fs.rmSync(path.dirname(file), { recursive: true });
});

t(
	'cut after the first MiB landed, before settle: the table on the disk already carries the kept partition, so the second run finds its bundle by PARTUUID',
	async () => {
		const fx = fixtures();
		const { file, dev, spec } = diskWithBundle(sharedBundle('zstd'));
		try {
			const id = oldMachineId(dev);
			const uuid = spec.slice('PARTUUID='.length, spec.indexOf(':'));
			const args = ['run', '--bundle', spec, '--target', dev, '--retain', fx.list, '--yes'];
			await cut(args, /settle cut point reached/, { ...process.env, REIMAGE_TEST_CUT: 'settle' });
			const table = sfdiskJson(file);
			assert.ok(
				table.partitions.some((p) => (p.uuid ?? '').toLowerCase() === uuid && p.start === 320 * 2048),
				`the kept partition is in the table that landed with the first MiB: ${JSON.stringify(table.partitions)}`,
			);
			assert.ok(table.partitions.length >= 2, "the image's own partitions are there too");
			const again = reimage([...args, '--json']);
			assert.is(again.status, 0, describe(again));
			assert.is((checkResult(again.stdout) as { reentry?: { attempt: number } }).reentry?.attempt, 2);
			checkIdentity(dev, id);
		} finally {
			detachLoop(dev);
		}
		fs.rmSync(path.dirname(file), { recursive: true });
	},
);

t('cut during the restore, after the first entry: the second run completes from the archive', async () => {
	const fx = fixtures();
	const { file, dev, spec } = diskWithBundle(sharedBundle('zstd'));
	try {
		const id = oldMachineId(dev);
		const args = ['run', '--bundle', spec, '--target', dev, '--retain', fx.list, '--yes'];
		await cut(args, /restore cut point reached/, { ...process.env, REIMAGE_TEST_CUT: 'restore' });
		const again = reimage([...args, '--json']);
		assert.is(again.status, 0, describe(again));
		const r = checkResult(again.stdout) as { reentry?: { attempt: number } };
		assert.is(r.reentry?.attempt, 2);
		checkIdentity(dev, id);
	} finally {
		detachLoop(dev);
	}
	fs.rmSync(path.dirname(file), { recursive: true });
});

t('a corrupt archive is exit 11 with the reason, the record kept; a record for another bundle is ignored', async () => {
	const fx = fixtures();
	const { file, dev, spec } = diskWithBundle(sharedBundle('zstd'));
	try {
		const args = ['run', '--bundle', spec, '--target', dev, '--retain', fx.list, '--yes'];
		await cut(args, /write cut point reached/, { ...process.env, REIMAGE_TEST_CUT: 'write' });
		const index = onKept(dev, (d) => {
			const f = path.join(d, 'retained.json');
			const text = fs.readFileSync(f, 'utf8');
			fs.writeFileSync(
				f,
				text.replace('"entries"', '"entries" ').replace(/"mode": (\d+)/, (_m, n: string) => `"mode": ${Number(n) ^ 0o7}`),
			);
			return text;
		});
		const bad = reimage([...args, '--json']);
		assert.is(bad.status, 11, describe(bad));
		assert.match(bad.stderr, /re-entry record .* archive .* sha256 .*: nothing is restored from it/);
		// An earlier run wrote the disk: the refusal is reported as failed, never refused.
		assert.match(bad.stdout, /"outcome": "failed"/);
		onKept(dev, (d) => {
			assert.ok(fs.existsSync(path.join(d, 'reentry.json')), 'the record was dropped');
			fs.writeFileSync(path.join(d, 'retained.json'), index);
			// The record now names another bundle: it is ignored with a warning.
			const rec = JSON.parse(fs.readFileSync(path.join(d, 'reentry.json'), 'utf8')) as { bundle: { manifestSha256: string } };
			rec.bundle.manifestSha256 = '0'.repeat(64);
			fs.writeFileSync(path.join(d, 'reentry.json'), JSON.stringify(rec));
		});
		const other = reimage(args);
		assert.match(other.stderr, /re-entry record .* is for another bundle .*: ignored/);
		assert.not.match(other.stderr, /re-entry: .*attempt/);
	} finally {
		detachLoop(dev);
	}
	fs.rmSync(path.dirname(file), { recursive: true });
});

t('a record whose kept partitions the image would overwrite (planted, or edited) is exit 11 before anything is written again', async () => {
	const fx = fixtures();
	const { file, dev, spec } = diskWithBundle(sharedBundle('zstd'));
	try {
		const args = ['run', '--bundle', spec, '--target', dev, '--retain', fx.list, '--yes'];
		await cut(args, /write cut point reached/, { ...process.env, REIMAGE_TEST_CUT: 'write' });
		onKept(dev, (d) => {
			// The record is not signed: here it claims the image's first partition is kept (left unwritten).
			const f = path.join(d, 'reentry.json');
			const rec = JSON.parse(fs.readFileSync(f, 'utf8')) as { kept: { start: number; size: number }[] };
			rec.kept.push({
				...rec.kept[0]!,
				number: 9,
				start: 2048,
				size: 2048,
				partuuid: randomUUID(),
				name: 'planted',
			} as (typeof rec.kept)[0]);
			fs.writeFileSync(f, JSON.stringify(rec));
		});
		const before = await sha256(file);
		const r = reimage([...args, '--json']);
		assert.is(r.status, 11, describe(r));
		assert.match(
			r.stderr,
			/re-entry record .*reentry\.json: .*: the record is not one this bundle's run could have written; nothing was written again/,
		);
		assert.is(await sha256(file), before, 'nothing written');
	} finally {
		detachLoop(dev);
	}
	fs.rmSync(path.dirname(file), { recursive: true });
});

// A bundle by URL: nginx serves it; the disk's home partition is kept (--keep PARTLABEL=home).
let web: Nginx | undefined;
async function served(): Promise<string> {
	if (!web) {
		const root = tmpDir('reimage-www-');
		copyBundleFiles(sharedBundle('zstd'), path.join(root, 'v2'));
		web = await startNginx(root);
	}
	return web.url('/v2/');
}
t.after(async () => {
	await web?.stop();
});

/** What a reboot takes: the RAM run directory's retained set and chunk cache (the test's /run outlives the killed run). */
const reboot = () => {
	for (const d of ['retained', 'chunk-cache']) fs.rmSync(path.join(RUNDIR, d), { recursive: true, force: true });
};

/** `run` of the bundle at URL onto DEV, keeping its partition "home", reporting to REPORT. */
const keepingHome = (url: string, dev: string, report: string, ...more: string[]) => [
	'run',
	'--bundle',
	url,
	'--target',
	dev,
	'--keep',
	'PARTLABEL=home',
	'--yes',
	'--report-url',
	report,
	...more,
];

/** The reports kept at the root of the kept partition (reimage-outbox/, 0700; each file 0600). */
function outbox(dev: string): { outcome: string; written: boolean }[] {
	partxUpdate(dev);
	const dir = mount(partNode(dev, 3), { rw: true });
	try {
		const box = path.join(dir, 'reimage-outbox');
		if (!fs.existsSync(box)) return [];
		assert.is(fs.statSync(box).mode & 0o777, 0o700, 'outbox 0700');
		const names = fs.readdirSync(box).sort();
		for (const n of names) assert.is(fs.statSync(path.join(box, n)).mode & 0o777, 0o600, `${n} 0600`);
		return names
			.filter((n) => n.endsWith('.json'))
			.map((n) => JSON.parse(fs.readFileSync(path.join(box, n), 'utf8')) as { outcome: string; written: boolean });
	} finally {
		umount(dir);
	}
}

t(
	'a bundle by URL, cut during the write: the set and its record were on the kept partition, so the run after the reboot re-enters and restores',
	async () => {
		const fx = fixtures();
		const url = await served();
		const { file, dev } = diskWithBundle();
		try {
			const id = oldMachineId(dev);
			const args = ['run', '--bundle', url, '--target', dev, '--keep', 'PARTLABEL=home', '--retain', fx.list, '--yes'];
			await cut(args, /write cut point reached/, { ...process.env, REIMAGE_TEST_CUT: 'write' });
			reboot();
			onKept(
				dev,
				(d) => {
					assert.ok(d, 'no retained set at the root of the kept partition (was: in RAM only, gone with the reboot)');
					const rec = JSON.parse(fs.readFileSync(path.join(d, 'reentry.json'), 'utf8')) as {
						attempt: number;
						bundle: { location: string };
					};
					assert.equal([rec.attempt, rec.bundle.location], [1, url]);
				},
				'',
			);
			const again = reimage([...args, '--json']);
			assert.is(again.status, 0, describe(again));
			assert.match(again.stderr, /re-entry: .*attempt 2/);
			assert.is((checkResult(again.stdout) as { reentry?: { attempt: number } }).reentry?.attempt, 2);
			checkIdentity(dev, id);
			onKept(dev, (d) => assert.is(d, '', 'the set was not removed after the restore'), '');
		} finally {
			detachLoop(dev);
		}
		fs.rmSync(path.dirname(file), { recursive: true });
	},
);

t(
	'a bundle by URL failing after writing while the endpoint is down: the invalidated disk keeps the kept partition in its table and the report on it; the next run sends it first and restores from the set there',
	async () => {
		const fx = fixtures();
		const good = await served();
		// The first range of the block map is wrong: found in the write, after the point of no return (exit 10, invalidated).
		copyBundleFiles(tamperedRange(), path.join(web!.root, 'bad'));
		let endpoint: Endpoint<{ outcome: string }> = await startEndpoint(204);
		const port = endpoint.port;
		await endpoint.stop();
		const { file, dev, spec } = diskWithBundle();
		try {
			const id = oldMachineId(dev);
			const uuid = spec.slice('PARTUUID='.length, spec.indexOf(':'));
			const args = (url: string) => keepingHome(url, dev, endpoint.url(), '--retain', fx.list);
			const r = await reimageAsync(BIN, args(web!.url('/bad/')));
			assert.is(r.status, 10, describe(r));
			assert.match(r.stderr, /kept on the bundle's medium as .*\("home"\):\/reimage-outbox\/[^ ]+\.json/);
			// The invalidated disk still lists the kept partition alone (was: no table at all, the partition and the set on it unreachable).
			assert.equal(
				sfdiskJson(file).partitions.map((p) => [(p.uuid ?? '').toLowerCase(), p.start, p.name]),
				[[uuid, 320 * 2048, 'home']],
			);
			assert.equal(
				outbox(dev).map((d) => [d.outcome, d.written]),
				[['failed', true]],
			);
			reboot();
			endpoint = await startEndpoint(204, port);
			const again = await reimageAsync(BIN, [...args(good), '--json']);
			await endpoint.stop();
			assert.is(again.status, 0, describe(again));
			assert.equal(
				endpoint.got.map((d) => d.outcome),
				['failed', 'success'],
				'the kept report first, then this run',
			);
			assert.equal(outbox(dev), [], 'the sent report was removed');
			checkIdentity(dev, id);
		} finally {
			detachLoop(dev);
		}
		fs.rmSync(path.dirname(file), { recursive: true });
	},
);

t(
	'a bundle by URL refused before it is in (the network down: not fetched; unsigned under --trust) while the endpoint is down: each report is kept on the partition --keep names, nothing else written; the next run sends them first',
	async () => {
		const good = await served();
		const keys = tmpDir('reimage-keys-');
		assert.is(reimage(['keygen', '--out', path.join(keys, 'fleet')]).status, 0);
		let endpoint: Endpoint<{ outcome: string; written: boolean; exitCode: number }> = await startEndpoint(204);
		const port = endpoint.port;
		const { file, dev } = diskWithBundle();
		try {
			const args = (url: string, ...more: string[]) => keepingHome(url, dev, endpoint.url(), '--no-retain', ...more);
			const old = await Promise.all([1, 2].map((n) => sha256(partNode(dev, n))));
			const home = await sha256(partNode(dev, 3));
			// The bundle's server is down, the endpoint up: the report is sent, and the kept partition was only looked at (read-only).
			const dead = `http://127.0.0.1:${closedPort()}/b/`;
			const sent = await reimageAsync(BIN, args(dead, '--retries', '1'));
			assert.is(sent.status, 9, describe(sent));
			assert.equal(
				endpoint.got.map((d) => d.exitCode),
				[9],
			);
			assert.is(await sha256(partNode(dev, 3)), home, 'the kept partition with nothing to send is not written (was: mounted read-write)');
			await endpoint.stop();
			// Another run holds the disk (its lock, a live pid): its partitions are that run's, the kept one is not opened;
			// the report is kept nowhere, and the log says why.
			const lock = path.join(RUNDIR, `lock-${path.basename(dev)}`);
			fs.writeFileSync(lock, `${process.pid} 0123456789abcdef\n`);
			try {
				const held = await reimageAsync(BIN, args(dead, '--retries', '1'));
				assert.is(held.status, 9, describe(held));
				assert.match(held.stderr, /kept nowhere: .*\(another reimage \(pid \d+\) is running on \/dev\/loop\d+\)/);
			} finally {
				fs.rmSync(lock, { force: true });
			}
			assert.is(await sha256(partNode(dev, 3)), home, 'not opened while another run holds the disk');
			// A plan writes nothing: its refusal's report is not kept on the partition either.
			const plan = await reimageAsync(BIN, [
				'plan',
				...keepingHome(dead, dev, endpoint.url(), '--no-retain', '--retries', '1')
					.slice(1)
					.filter((a) => a !== '--yes'),
			]);
			assert.is(plan.status, 9, describe(plan));
			assert.match(plan.stderr, /kept nowhere/);
			assert.is(await sha256(partNode(dev, 3)), home, 'a plan wrote nothing to the kept partition');
			// A TYPE= selector names no home (image partitions may share a type), and a target with a mounted partition is
			// the run's to refuse (nothing of it is mounted again): kept nowhere, the kept partition not written.
			const type = sfdiskJson(file).partitions[2]!.type;
			const byType = await reimageAsync(
				BIN,
				args(dead, '--retries', '1').map((a) => (a === 'PARTLABEL=home' ? `TYPE=${type}` : a)),
			);
			assert.is(byType.status, 9, describe(byType));
			assert.match(byType.stderr, /kept nowhere/);
			const root = mount(partNode(dev, 1));
			try {
				const busy = await reimageAsync(BIN, args(dead, '--retries', '1'));
				assert.is(busy.status, 9, describe(busy));
				assert.match(busy.stderr, /kept nowhere/);
			} finally {
				umount(root);
			}
			assert.is(await sha256(partNode(dev, 3)), home, 'nothing kept on it by a TYPE= selector or on a busy target');
			// Now the endpoint is down too: not fetched, exit 9.
			const missing = await reimageAsync(BIN, args(dead, '--retries', '1'));
			assert.is(missing.status, 9, describe(missing));
			assert.match(missing.stderr, /kept on the bundle's medium as PARTUUID=[0-9a-f-]+ \("home"\):\/reimage-outbox\/[^ ]+\.json/);
			const unsigned = await reimageAsync(BIN, args(good, '--trust', path.join(keys, 'fleet.pub')));
			assert.is(unsigned.status, 3, describe(unsigned));
			assert.equal(
				outbox(dev).map((d) => [d.outcome, d.written]),
				[
					['refused', false],
					['refused', false],
				],
				'both refusals kept on the kept partition (was: kept nowhere)',
			);
			assert.equal(await Promise.all([1, 2].map((n) => sha256(partNode(dev, n)))), old, 'the old system is byte-identical');
			endpoint = await startEndpoint(204, port);
			const again = await reimageAsync(BIN, args(good));
			await endpoint.stop();
			assert.is(again.status, 0, describe(again));
			assert.equal(
				endpoint.got.map((d) => [d.outcome, d.exitCode]),
				[
					['refused', 9],
					['refused', 3],
					['success', 0],
				],
				'the kept reports first, oldest first, then this run',
			);
			assert.equal(outbox(dev), [], 'the sent reports were removed');
		} finally {
			detachLoop(dev);
		}
		fs.rmSync(path.dirname(file), { recursive: true });
	},
);

t.run();
