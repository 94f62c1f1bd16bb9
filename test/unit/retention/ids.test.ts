import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ReimageError } from '../../../src/errors.ts';
import { mapOwner, parseIdFile, readIds } from '../../../src/retention/ids.ts';

const oldUsers = parseIdFile('root:x:0:0::/root:/bin/sh\nkiosk:x:1001:1001::/home/kiosk:/bin/sh\n# comment\n+nis\nbroken\n');
const newUsers = parseIdFile('root:x:0:0::/root:/bin/sh\nkiosk:x:1002:1002::/home/kiosk:/bin/sh\n');
const newGroups = parseIdFile('root:x:0:\nkiosk:x:1002:\n');

test('parses names and ids, skipping comments and NIS lines', () => {
	assert.is(oldUsers.byName.get('kiosk'), 1001);
	assert.is(oldUsers.byId.get(1001), 'kiosk');
	assert.is(oldUsers.byName.size, 2);
});

test('owners map by name to the new image', () => {
	const m = mapOwner({ uid: 1001, gid: 1001, user: 'kiosk', group: 'kiosk' }, newUsers, newGroups);
	assert.equal(m, { uid: 1002, gid: 1002, userMapped: true, groupMapped: true });
});

test('a name missing in the new image keeps the numeric id and is flagged', () => {
	const m = mapOwner({ uid: 1500, gid: 1600, user: 'gone', group: 'gone' }, newUsers, newGroups);
	assert.equal(m, { uid: 1500, gid: 1600, userMapped: false, groupMapped: false });
	const n = mapOwner({ uid: 77, gid: 0, group: 'root' }, newUsers, newGroups);
	assert.equal(n, { uid: 77, gid: 0, userMapped: false, groupMapped: true });
});

test('readIds: a missing passwd is empty; an unreadable one refuses the old system (strict), not the new', async () => {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-ids-'));
	try {
		fs.mkdirSync(path.join(root, 'etc/passwd'), { recursive: true });
		fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
		const lenient = await readIds(root);
		assert.is(lenient.users.byName.size, 0);
		assert.is(lenient.groups.byName.get('root'), 0);
		try {
			await readIds(root, () => {}, true);
			assert.unreachable('not refused');
		} catch (e) {
			assert.instance(e, ReimageError);
			assert.is((e as ReimageError).exit, 'retention');
			assert.match((e as ReimageError).message, /^the old system's \/etc\/passwd is not a regular file: owners would lose their names/);
		}
		fs.rmSync(path.join(root, 'etc/passwd'), { recursive: true });
		assert.is((await readIds(root, () => {}, true)).users.byName.size, 0, 'missing is not an error');
	} finally {
		fs.rmSync(root, { recursive: true, force: true });
	}
});

test.run();
