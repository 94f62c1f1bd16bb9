import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { remapAcl } from '../../../src/retention/acl.ts';
import { parseIdFile } from '../../../src/retention/ids.ts';

// user::rw- user:1001:r-- group::r-- group:1100:r-- mask::r-- other::---
function acl(entries: [number, number, number][]): string {
	const b = Buffer.alloc(4 + entries.length * 8);
	b.writeUInt32LE(2, 0);
	entries.forEach(([tag, perm, id], i) => {
		b.writeUInt16LE(tag, 4 + i * 8);
		b.writeUInt16LE(perm, 6 + i * 8);
		b.writeUInt32LE(id, 8 + i * 8);
	});
	return b.toString('base64');
}
const U = 0xffffffff;
const ids = {
	oldUsers: parseIdFile('kiosk:x:1001:1001::/:/bin/sh\n'),
	oldGroups: parseIdFile('ssl-cert:x:1100:\nold-only:x:1300:\n'),
	newUsers: parseIdFile('kiosk:x:1002:1002::/:/bin/sh\n'),
	newGroups: parseIdFile('ssl-cert:x:1200:\n'),
};

test('named ACL entries are mapped by name', () => {
	const r = remapAcl(
		acl([
			[1, 6, U],
			[2, 4, 1001],
			[4, 4, U],
			[8, 4, 1100],
			[0x10, 4, U],
			[0x20, 0, U],
		]),
		ids,
	);
	assert.equal(r.unmapped, []);
	assert.is(
		r.value,
		acl([
			[1, 6, U],
			[2, 4, 1002],
			[4, 4, U],
			[8, 4, 1200],
			[0x10, 4, U],
			[0x20, 0, U],
		]),
	);
});

test('an ACL name missing in the new image keeps its id and is reported', () => {
	const r = remapAcl(
		acl([
			[8, 4, 1300],
			[2, 4, 4242],
		]),
		ids,
	);
	assert.is(
		r.value,
		acl([
			[8, 4, 1300],
			[2, 4, 4242],
		]),
	);
	assert.equal(r.unmapped, ['group old-only (id 1300)', 'user 4242 (id 4242)']);
});

test('values that are not version-2 ACLs pass through untouched', () => {
	assert.is(remapAcl('aGVsbG8=', ids).value, 'aGVsbG8=');
});

test.run();
