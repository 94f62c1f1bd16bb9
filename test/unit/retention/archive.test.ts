import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
	archiveKey,
	dirPlace,
	dropArchive,
	inRam,
	findArchive,
	loadArchiveData,
	readArchive,
	saveArchive,
} from '../../../src/retention/archive.ts';
import type { Captured } from '../../../src/retention/capture.ts';
import { parseIdFile } from '../../../src/retention/ids.ts';
import { createLog } from '../../../src/util/log.ts';
import type { BPath } from '../../../src/util/bytes.ts';

const log = createLog({ write: () => {} }, Date.now, true);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-unit-archive-'));

function entries(stage: string): Captured[] {
	const body = path.join(stage, 'e0');
	// A sparse file: 1 MiB hole, 3 bytes, 1 MiB hole.
	const fd = fs.openSync(body, 'w');
	fs.writeSync(fd, Buffer.from('abc'), 0, 3, 1 << 20);
	fs.ftruncateSync(fd, 2 << 20);
	fs.closeSync(fd);
	const name = Buffer.from([0x2f, 0x65, 0x74, 0x63, 0x2f, 0xff, 0x0a]).toString('latin1') as BPath;
	return [
		{
			path: name,
			kind: 'file',
			line: 3,
			mode: 0o4750,
			uid: 1001,
			gid: 1001,
			user: 'kiosk',
			group: 'kiosk',
			mtimeNs: 1700000000123456789n,
			size: 2 << 20,
			sparse: true,
			xattrs: [{ name: 'user.k', value: 'AQI=' }],
			staged: body,
			notes: [],
		},
		{
			path: '/etc/link' as BPath,
			kind: 'symlink',
			line: 4,
			mode: 0o777,
			uid: 0,
			gid: 0,
			mtimeNs: 5n,
			size: 0,
			target: '/x\n' as BPath,
			xattrs: [],
			notes: ['n'],
		},
	];
}

test('a saved set reads back exactly (byte paths, ns times, xattrs, ids, holes kept), and is dropped cleanly', async () => {
	const stage = tmp();
	const keep = tmp();
	const place = dirPlace(path.join(keep, 'reimage-retained'), true);
	const key = archiveKey({ serial: 'KIOSK 42', wwn: '', size: 1 << 30, backingFile: '', model: 'm' });
	assert.match(key, /^KIOSK_42-[0-9a-f]{12}$/);
	const ids = { users: parseIdFile('root:x:0:0\nkiosk:x:1001:1001\n'), groups: parseIdFile('root:x:0:\nkiosk:x:1001:\n') };
	const e = entries(stage);
	const saved = await saveArchive(
		[place],
		key,
		e,
		ids,
		{ disk: { serial: 'KIOSK 42', wwn: '', model: 'm', size: 1 << 30 }, bundle: { rawSha256: 'a'.repeat(64) }, list: 'kiosk.list' },
		log,
	);
	assert.equal(saved, [{ where: path.join(keep, 'reimage-retained', key), survivesReboot: true }]);
	const dataFile = path.join(keep, 'reimage-retained', key, 'data', '0');
	assert.ok(fs.statSync(dataFile).blocks * 512 < 64 << 10, 'the copy stays sparse');
	const found = await findArchive([dirPlace(path.join(tmp(), 'none'), true), place], key, log);
	assert.ok(found);
	const a = found!.archive;
	assert.is(a.entries.length, 2);
	assert.equal({ ...a.entries[0]!, staged: undefined, sha256: undefined }, { ...e[0]!, staged: undefined, sha256: undefined });
	assert.match((a.entries[0] as { sha256?: string }).sha256 ?? '', /^[0-9a-f]{64}$/, 'the bytes are recorded with their sha256');
	assert.equal({ ...a.entries[1]!, sha256: undefined }, { ...e[1]!, staged: undefined, sha256: undefined });
	assert.is(a.users.byName.get('kiosk'), 1001);
	assert.is(a.groups.byId.get(1001), 'kiosk');
	const into = tmp();
	const loaded = await loadArchiveData(place, key, into);
	assert.equal(fs.readFileSync(loaded[0]!.staged!), fs.readFileSync(e[0]!.staged!));
	await dropArchive([place], key, log);
	assert.not.ok(fs.existsSync(path.join(keep, 'reimage-retained')));
});

test('a corrupt index, or a path with .., is named and refuses the run', async () => {
	const keep = tmp();
	const dir = path.join(keep, 'k1');
	fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
	fs.writeFileSync(
		path.join(dir, 'retained.json'),
		JSON.stringify({ format: 'reimage-retained/1', entries: [{ path: '/x', kind: 'fifo' }] }),
	);
	let msg = '';
	await readArchive(dir).catch((e: Error) => (msg = e.message));
	assert.match(msg, /retained\.json is not a reimage-retained\/1 index/);
	let refused = '';
	await findArchive([dirPlace(keep, true)], 'k1', log).catch((e: Error) => (refused = e.message));
	assert.match(refused, /the saved retained set in .*k1 is unreadable \(.*\): nothing was written; restore it from a copy, or delete it/);
	// A path that climbs out of the root is refused by the index itself.
	fs.writeFileSync(
		path.join(dir, 'retained.json'),
		JSON.stringify({
			format: 'reimage-retained/1',
			tool: 't',
			created: 'c',
			disk: { serial: '', wwn: '', model: '', size: 1 },
			bundle: { rawSha256: 'a' },
			list: 'l',
			users: { byName: [], byId: [] },
			groups: { byName: [], byId: [] },
			entries: [
				{
					path: '/srv/../etc/evil',
					kind: 'file',
					line: 1,
					mode: 0o4755,
					uid: 0,
					gid: 0,
					mtimeNs: { $bigint: '0' },
					size: 0,
					xattrs: [],
					notes: [],
				},
			],
		}),
	);
	await readArchive(dir).catch((e: Error) => (msg = e.message));
	assert.match(msg, /expected a normalised absolute path/);
});

test('a failed save leaves no half-written copy behind; a directory on tmpfs is not lasting', async () => {
	const keep = tmp();
	const place = dirPlace(path.join(keep, 'reimage-retained'), true);
	const e = entries(tmp());
	const gone = [{ ...e[0]!, staged: path.join(tmp(), 'vanished') }];
	const warned: string[] = [];
	const l = { ...log, warn: (x: string) => warned.push(x) };
	const saved = await saveArchive(
		[place],
		'k',
		gone,
		{ users: parseIdFile(''), groups: parseIdFile('') },
		{ disk: { serial: '', wwn: '', model: '', size: 1 }, bundle: { rawSha256: 'a' }, list: 'l' },
		l,
	);
	assert.equal(saved, []);
	assert.match(warned[0] ?? '', /could not save the retained set in .*reimage-retained: ENOENT/);
	assert.equal(fs.readdirSync(path.join(keep, 'reimage-retained')), [], 'no .k.tmp-* copy of private files left');
	assert.ok(await inRam('/dev/shm/not-there-yet/reimage-retained'), '/dev/shm is tmpfs');
	assert.not.ok(await inRam(keep), 'the test machine keeps /tmp on disk');
});

test.run();
