// The HTTP chunk store: a chunk is one GET of <store>/xxxx/<id>.cacnk on a
// kept-alive connection, 404 is "not there", a 503 is retried, credentials go along.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadNetOptions } from '../../../src/net/options.ts';
import { httpChunkSource } from '../../../src/sources/chunks.ts';
import { createLog } from '../../../src/util/log.ts';

const ID = 'ab12'.padEnd(64, '0');
const OTHER = 'cd34'.padEnd(64, '0');

test('chunks come by path on one kept-alive connection; 404 is undefined; 503 is retried; auth is sent', async () => {
	const seen: { url: string; auth?: string }[] = [];
	let connections = 0;
	let fail = 1;
	const server = http.createServer((req, res) => {
		seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
		if (req.url === `/b/chunks/ab12/${ID}.cacnk`) {
			if (fail-- > 0) return res.writeHead(503, { 'content-length': '0' }).end();
			return res.writeHead(200, { 'content-length': '5' }).end('zstd!');
		}
		res.writeHead(404, { 'content-length': '0' }).end();
	});
	server.on('connection', () => connections++);
	await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
	const net = { ...(await loadNetOptions()), auth: 'Bearer t0k' };
	const log = createLog({ write: () => {} });
	try {
		const base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/b/chunks/`);
		const s = httpChunkSource(base, { net, log, retries: 2, parallel: 3 });
		assert.is(s.parallel, 3);
		assert.match(s.name, /^chunk store http:\/\/127\.0\.0\.1:\d+\/b\/chunks\/$/);
		assert.equal(await s.get(ID), Buffer.from('zstd!'));
		assert.is(await s.get(OTHER), undefined);
		assert.is(await s.size?.(ID), 5);
		assert.equal(
			seen.map((x) => x.url),
			[`/b/chunks/ab12/${ID}.cacnk`, `/b/chunks/ab12/${ID}.cacnk`, `/b/chunks/cd34/${OTHER}.cacnk`, `/b/chunks/ab12/${ID}.cacnk`],
		);
		assert.ok(seen.every((x) => x.auth === 'Bearer t0k'));
		assert.is(connections, 1, 'one kept-alive connection');
	} finally {
		net.http.destroy();
		server.close();
	}
});

test.run();
