import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { oldPlan } from '../../../src/stages/mounts.ts';
import type { Manifest } from '../../../src/bundle/manifest.ts';

test('--old-mount paths must be normalised and unique', () => {
	const m = {} as Manifest; // overrides do not read the manifest
	assert.equal(
		oldPlan(m, ['LABEL=root:/', 'LABEL=data:/kiosk']).map((l) => l.path),
		['/', '/kiosk'],
	);
	for (const bad of ['LABEL=data:/../x', 'LABEL=data://x', 'LABEL=data:/x/'])
		assert.throws(() => oldPlan(m, ['LABEL=root:/', bad]), /--old-mount .*: the path/);
	assert.throws(() => oldPlan(m, ['LABEL=root:/', 'LABEL=data:/']), /names \/ twice/);
});

test.run();
