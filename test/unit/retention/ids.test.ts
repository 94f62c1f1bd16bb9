import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mapOwner, parseIdFile } from '../../../src/retention/ids.ts';

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

test.run();
