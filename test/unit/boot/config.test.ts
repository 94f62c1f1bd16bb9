import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config, bakedTrust, narrow } from '../../../src/boot/config.ts';
import { parseCmdline } from '../../../src/boot/cmdline.ts';

const base = Config.parse({ mode: 'interactive', target: 'serial:K42', bundle: 'LABEL=R:/b' });

test('defaults are the safe ones', () => {
	assert.equal(Config.parse({}), {
		mode: 'auto',
		onFailure: 'halt',
		allowShell: false,
		diagnosticShells: false,
		after: 'reboot',
		noRetain: false,
		grow: false,
		keep: [],
		reentryAttempts: 10,
		verifyWritten: false,
		unmapped: 'zero',
		allowDowngrade: false,
		allowUnsigned: false,
		network: false,
	});
	// verifyRaw absent: a bundle without a block map is decoded and checked before writing (stages/proof.ts).
	assert.is(Config.parse({}).verifyRaw, undefined);
	assert.not.ok(Config.safeParse({ mode: 'auto', surprise: 1 }).success, 'unknown keys refused');
});

test('the entry cap is a positive whole number', () => {
	assert.is(Config.parse({ maxEntries: 200000 }).maxEntries, 200000);
	for (const bad of [0, -1, 1.5, '100']) assert.not.ok(Config.safeParse({ maxEntries: bad }).success, `maxEntries ${String(bad)} accepted`);
});

test('kernel arguments narrow: a safer mode is accepted, a more destructive one refused', () => {
	assert.is(narrow(base, { armed: true, mode: 'plan' }).mode, 'plan');
	assert.throws(() => narrow(base, { armed: true, mode: 'auto' }), /would loosen the baked mode interactive/);
});

test('a shell on failure needs the policy to allow shells', () => {
	assert.throws(() => narrow(base, { armed: true, onFailure: 'shell' }), /allowShell is false/);
	assert.is(narrow({ ...base, allowShell: true }, { armed: true, onFailure: 'shell' }).onFailure, 'shell');
});

test('target selectors add up; a different bundle location is refused', () => {
	assert.equal(narrow(base, { armed: true, target: 'size:1G-2T' }).targets, ['serial:K42', 'size:1G-2T']);
	assert.throws(() => narrow(base, { armed: true, bundle: 'LABEL=OTHER:/b' }), /differs from the baked bundle location/);
	assert.is(narrow(Config.parse({}), { armed: true, bundle: 'LABEL=X:/b' }).bundle, 'LABEL=X:/b');
});

test('an initrd with no baked key refuses every bundle unless its config says allowUnsigned; no kernel argument loosens it', async () => {
	const none = mkdtempSync(join(tmpdir(), 'reimage-baked-'));
	writeFileSync(join(none, 'config.json'), '{}');
	for (const dir of [none, join(none, 'missing')]) {
		await bakedTrust(dir, Config.parse({})).then(
			() => assert.unreachable('no key and no allowUnsigned accepted a bundle'),
			(e: Error & { code: number }) => {
				assert.is(e.code, 2);
				assert.match(
					e.message,
					/this initrd trusts no signing key \(no \*\.pub in .*\) and its config does not set allowUnsigned: rebuild it/,
				);
			},
		);
	}
	assert.equal(await bakedTrust(none, Config.parse({ allowUnsigned: true })), { trust: [], keys: [], allowUnsigned: true });
	const keyed = mkdtempSync(join(tmpdir(), 'reimage-baked-'));
	writeFileSync(join(keyed, 'fleet.pub'), generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }));
	const t = await bakedTrust(keyed, Config.parse({ allowUnsigned: true }));
	assert.equal(t.trust, [keyed], 'a baked key makes signatures required, allowUnsigned or not');
	assert.is(t.allowUnsigned, false);
	// The kernel command line has no word for it.
	assert.throws(() => parseCmdline('rd.reimage rd.reimage.allow-unsigned=1'), /kernel argument rd\.reimage\.allow-unsigned is not known/);
	assert.throws(() => parseCmdline('rd.reimage rd.reimage.trust=/tmp'), /is not known/);
});

test.run();
