// The report POSTed to an endpoint: retried on 503, given up (a warning) when nobody listens.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadNetOptions } from '../../../src/net/options.ts';
import { postJson } from '../../../src/net/post.ts';
import { createLog } from '../../../src/util/log.ts';
import { startEndpoint } from '../../helpers/endpoint.ts';

test('a 503 is retried; the JSON arrives once the endpoint answers', async () => {
	const endpoint = await startEndpoint((before) => (before === 0 ? 503 : 204));
	const net = await loadNetOptions();
	const lines: string[] = [];
	const log = createLog({ write: (l) => void lines.push(l) });
	try {
		const ok = await postJson(endpoint.url('/r'), { outcome: 'success' }, net, log, { backoffMs: 10 });
		assert.is(ok, true);
		assert.equal(endpoint.got, [{ outcome: 'success' }, { outcome: 'success' }], 'the 503, then the one taken');
	} finally {
		net.http.destroy();
		await endpoint.stop();
	}
});

test('nobody listening: false and one warning, within the bound', async () => {
	const net = await loadNetOptions();
	const lines: string[] = [];
	const log = createLog({ write: (l) => void lines.push(l) });
	const t0 = Date.now();
	assert.is(await postJson('http://127.0.0.1:9/r', { outcome: 'failed' }, net, log, { tries: 2, backoffMs: 10, timeoutMs: 500 }), false);
	assert.ok(Date.now() - t0 < 3000);
	assert.match(lines.join(''), /warning: the report could not be sent to http:\/\/127\.0\.0\.1:9\/r \(ECONNREFUSED\)/);
	net.http.destroy();
});

test('a slow endpoint (no answer) and a 500: given up after the timeout of each try, false', async () => {
	let posts = 0;
	const slow = http.createServer(() => void posts++);
	const broken = http.createServer((_req, res) => void (posts++, res.writeHead(500).end()));
	await Promise.all([slow, broken].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
	const net = await loadNetOptions();
	const lines: string[] = [];
	const log = createLog({ write: (l) => void lines.push(l) });
	try {
		const t0 = Date.now();
		const url = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/r`;
		assert.is(await postJson(url(slow), { outcome: 'success' }, net, log, { tries: 2, backoffMs: 10, timeoutMs: 300 }), false);
		assert.ok(Date.now() - t0 < 2000);
		assert.is(await postJson(url(broken), { outcome: 'success' }, net, log, { tries: 2, backoffMs: 10 }), false);
		assert.is(posts, 4, 'two tries each');
		assert.match(lines.join(''), /\(ETIMEDOUT\)/);
		assert.match(lines.join(''), /\(HTTP 500\)/);
	} finally {
		net.http.destroy();
		slow.closeAllConnections();
		slow.close();
		broken.close();
	}
});

test.run();
