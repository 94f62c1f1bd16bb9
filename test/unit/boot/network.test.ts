// A network initrd: when it is wanted, what dracut gets, and the kernel arguments for a bundle URL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCmdline } from '../../../src/boot/cmdline.ts';
import { Config, narrow } from '../../../src/boot/config.ts';
import { checkNetworkModule, NETWORK_ARGS, networkBuild, wantsNetwork, withBaked } from '../../../src/boot/network.ts';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

test('the network is wanted when asked for, by the policy, or by a baked bundle URL', () => {
	const c = Config.parse({});
	assert.is(c.network, false);
	assert.is(wantsNetwork(false, c), false);
	assert.is(wantsNetwork(true, c), true);
	assert.is(wantsNetwork(false, Config.parse({ network: true })), true);
	assert.is(wantsNetwork(false, Config.parse({ bundle: 'https://fleet.example/b/' })), true);
	assert.is(wantsNetwork(false, Config.parse({ bundle: 'LABEL=REIMAGE:/bundle' })), false);
});

test('dracut gets its network module and rd.neednet=1 ip=dhcp; initramfs-tools its configure_networking (REIMAGE_NETWORK for the hook)', () => {
	assert.equal(networkBuild('dracut', true), { add: ['network'], args: ['rd.neednet=1', 'ip=dhcp'], env: {} });
	assert.equal(NETWORK_ARGS, ['rd.neednet=1', 'ip=dhcp']);
	assert.equal(networkBuild('dracut', false), { add: [], args: [], env: {} });
	assert.equal(networkBuild('initramfs-tools', false), { add: [], args: [], env: {} });
	assert.equal(networkBuild('initramfs-tools', true), { add: [], args: [], env: { REIMAGE_NETWORK: 'dhcp' } });
});

test('rd.reimage.bundle=https://… is a bundle location like any other, and narrows like one', () => {
	const k = parseCmdline('rd.reimage rd.reimage.bundle=https://fleet.example/b/ rd.neednet=1 ip=dhcp');
	assert.is(k.bundle, 'https://fleet.example/b/');
	assert.is(narrow(Config.parse({}), k).bundle, 'https://fleet.example/b/');
	assert.throws(() => narrow(Config.parse({ bundle: 'https://fleet.example/a/' }), k), /differs from the baked bundle location/);
});

test("a network initrd needs dracut's network module (Debian: dracut-network)", () => {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-modules-'));
	fs.mkdirSync(path.join(d, '90kernel-modules'));
	assert.throws(() => checkNetworkModule(d, true), /apt install dracut-network/);
	checkNetworkModule(d, false);
	fs.mkdirSync(path.join(d, '40network'));
	checkNetworkModule(d, true);
});

test('reportUrl must be an http(s) URL', () => {
	assert.is(Config.parse({ reportUrl: 'https://fleet.example/r' }).reportUrl, 'https://fleet.example/r');
	assert.throws(() => Config.parse({ reportUrl: 'ftp://fleet.example/r' }));
	assert.throws(() => Config.parse({ reportUrl: 'not a url' }));
});

test('withBaked: the credentials go next to config.json as auth (0600), checked first; the config directory is not changed', async () => {
	const d = fs.mkdtempSync(path.join(os.tmpdir(), 'baked-'));
	const cfg = path.join(d, 'cfg');
	fs.mkdirSync(cfg);
	fs.writeFileSync(path.join(cfg, 'config.json'), '{}\n');
	const good = path.join(d, 'good');
	fs.writeFileSync(good, 'bearer t0ken\n', { mode: 0o644 });
	const b = await withBaked(cfg, { authFile: good });
	try {
		assert.is(fs.readFileSync(path.join(b.dir, 'auth'), 'utf8'), 'bearer t0ken\n');
		assert.is(fs.statSync(path.join(b.dir, 'auth')).mode & 0o777, 0o600);
		assert.ok(fs.existsSync(path.join(b.dir, 'config.json')));
		assert.equal(fs.readdirSync(cfg), ['config.json'], 'the given directory is left as it was');
	} finally {
		await b.remove();
	}
	const bad = path.join(d, 'bad');
	fs.writeFileSync(bad, 'basic no-colon\n');
	await withBaked(cfg, { authFile: bad }).then(
		() => assert.unreachable('a malformed auth file was baked'),
		(e: Error) => assert.match(e.message, /auth file .*bad: basic credentials must be USER:PASSWORD/),
	);
	fs.rmSync(d, { recursive: true, force: true });
});

test.run();
