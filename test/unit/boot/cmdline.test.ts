import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCmdline, splitCmdline } from '../../../src/boot/cmdline.ts';

const refused = (text: string, re: RegExp) => {
	try {
		parseCmdline(text);
		assert.unreachable(`accepted ${text}`);
	} catch (e) {
		assert.is((e as { code: number }).code, 2);
		assert.match((e as Error).message, re);
	}
};

test('words split like the kernel does, with double quotes', () => {
	assert.equal(splitCmdline(' root=/dev/vda1  quiet rd.reimage.bundle="LABEL=my stick:/b" '), [
		'root=/dev/vda1',
		'quiet',
		'rd.reimage.bundle=LABEL=my stick:/b',
	]);
});

test('armed, with every known key', () => {
	assert.equal(
		parseCmdline(
			'quiet rd.reimage rd.reimage.bundle=LABEL=REIMAGE:/bundle rd.reimage.target=serial:K42 rd.reimage.mode=plan rd.reimage.on-failure=shell rd.reimage.test-pause=head\n',
		),
		{
			armed: true,
			bundle: 'LABEL=REIMAGE:/bundle',
			target: 'serial:K42',
			mode: 'plan',
			onFailure: 'shell',
			testPause: 'head',
		},
	);
});

test('not armed without rd.reimage, or with rd.reimage=0', () => {
	assert.is(parseCmdline('root=LABEL=root ro quiet').armed, false);
	assert.is(parseCmdline('rd.reimage=0 rd.reimage.target=serial:x').armed, false);
	assert.is(parseCmdline('rd.reimage=1').armed, true);
});

test('unknown keys, duplicates, oversized and bad values are refused', () => {
	refused('rd.reimage rd.reimage.targte=serial:x', /rd\.reimage\.targte is not known/);
	refused('rd.reimage rd.reimage.mode=auto rd.reimage.mode=plan', /given twice/);
	refused(`rd.reimage rd.reimage.bundle=${'x'.repeat(600)}`, /600 characters long/);
	refused('rd.reimage rd.reimage.mode=yolo', /rd\.reimage\.mode=yolo is not allowed/);
	refused('rd.reimage=maybe', /rd\.reimage=maybe is not understood/);
});

test.run();
