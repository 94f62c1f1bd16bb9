import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coveredBy, parseList } from '../../../src/retention/list.ts';
import type { BPath } from '../../../src/util/bytes.ts';
import { ReimageError } from '../../../src/errors.ts';

const parse = (s: string | Buffer) => parseList(typeof s === 'string' ? Buffer.from(s) : s, 'test.list');
const refused = (s: string, re: RegExp) => {
	try {
		parse(s);
	} catch (e) {
		assert.instance(e, ReimageError);
		assert.is((e as ReimageError).code, 5);
		assert.match((e as Error).message, re);
		assert.match((e as Error).message, /test\.list line \d+/);
		return;
	}
	assert.unreachable(`accepted ${JSON.stringify(s)}`);
};

test('comments, blank lines, required and optional', () => {
	const e = parse('# identity\n\n/etc/machine-id\n  ?/etc/opt  \n/etc/ssh/\n');
	assert.is(e.length, 3);
	assert.equal(
		e.map((x) => x.optional),
		[false, true, false],
	);
	assert.equal(e[0]!.components, [{ literal: 'etc' }, { literal: 'machine-id' }]);
	assert.is(e[2]!.components.length, 2, 'trailing slash dropped');
	assert.is(e[1]!.line, 4);
});

test('globs match within one component and not leading dots', () => {
	const [e] = parse('/etc/ssh/ssh_host_*_key');
	const c = e!.components[2]!;
	assert.ok('glob' in c);
	if (!('glob' in c)) return;
	assert.ok(c.glob.test('ssh_host_rsa_key'));
	assert.not.ok(c.glob.test('ssh_host_rsa_key.pub'));
	const [d] = parse('/home/*');
	const g = d!.components[1]!;
	if (!('glob' in g)) return assert.unreachable();
	assert.not.ok(g.glob.test('.hidden'));
	assert.ok(g.glob.test('user'));
	const [b] = parse('/dev/sd[a-c]');
	const br = b!.components[1]!;
	if (!('glob' in br)) return assert.unreachable();
	assert.ok(br.glob.test('sdb'));
	assert.not.ok(br.glob.test('sdd'));
});

test('escapes write any byte, and make glob characters literal', () => {
	const [e] = parse('/srv/name with\\nnewline/bad-\\xff/star\\*');
	assert.equal(
		e!.components.map((c) => ('literal' in c ? c.literal : 'GLOB')),
		['srv', 'name with\nnewline', 'bad-\xff', 'star*'],
	);
});

test('raw non-UTF-8 bytes in the list are kept as bytes', () => {
	const [e] = parse(Buffer.concat([Buffer.from('/srv/a'), Buffer.from([0xff]), Buffer.from('b\n')]));
	assert.equal(e!.components[1], { literal: 'a\xffb' });
});

test('unsafe lines are refused with the line number', () => {
	refused('/etc/ok\netc/relative', /line 2 .*not an absolute path/);
	refused('/etc/../shadow', /"\.\." component/);
	refused('/etc/./x', /"\." component/);
	refused('/etc//x', /empty path component/);
	refused('/', /whole file system/);
	refused('/etc/a\0b', /NUL/);
	refused('/etc/\\x00', /NUL/);
	refused('/etc/\\x2fx', /\(\/\) inside/);
	refused('/etc/[abc', /without a closing/);
	refused('/etc/\\q', /unknown escape/);
	refused('/' + 'a'.repeat(5000), /longer than/);
});

test('coveredBy: the line that names a path, itself or as a directory above it', () => {
	const list = parseList(Buffer.from('/etc/ssh/ssh_host_*_key\n/var/lib/kiosk\n?/etc/machine-id\n'), 'l');
	const line = (p: string) => coveredBy(list, p as BPath)?.line;
	assert.is(line('/etc/ssh/ssh_host_ed25519_key'), 1);
	assert.is(line('/var/lib/kiosk'), 2);
	assert.is(line('/var/lib/kiosk/a/b'), 2);
	assert.is(line('/etc/machine-id'), 3);
	assert.is(line('/etc/ssh/ssh_host_ed25519_key.pub'), undefined);
	assert.is(line('/var/lib'), undefined);
	assert.is(line('/root/.ssh/authorized_keys'), undefined);
});

test.run();
