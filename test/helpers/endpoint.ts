// A report endpoint for tests: an in-process HTTP server on the loopback that
// keeps every JSON body POSTed to it (whatever it answered) and answers with `answer` (a status, or
// a function of how many requests came before: 503 first, then 204, say).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { holdPort } from './ports.ts';

export type Endpoint<T> = {
	got: T[];
	// The Authorization header of each request in `got` ('' when it had none).
	auth: string[];
	answer: number | ((before: number) => number);
	port: number;
	// url: the endpoint's URL on 127.0.0.1 (or HOST, e.g. 10.0.2.2 from a QEMU guest) with PATH.
	url: (path?: string, host?: string) => string;
	stop: () => Promise<void>;
};

// PORT: listen there (0: a free port); a test stops an endpoint and starts it again on its port to make it
// unreachable for a while (connections to a stopped endpoint's port are refused: see holdPort).
export async function startEndpoint<T = unknown>(answer: Endpoint<T>['answer'] = 204, port = 0): Promise<Endpoint<T>> {
	let seen = 0;
	const e = { got: [] as T[], auth: [] as string[], answer } as Endpoint<T>;
	const server = http.createServer((req, res) => {
		let body = '';
		req.on('data', (c: Buffer) => (body += c.toString()));
		req.on('end', () => {
			const status = typeof e.answer === 'number' ? e.answer : e.answer(seen);
			seen++;
			e.got.push(JSON.parse(body) as T);
			e.auth.push(req.headers.authorization ?? '');
			res.writeHead(status).end();
		});
	});
	await new Promise<void>((r, no) => server.once('error', no).listen(holdPort(port), '127.0.0.1', r));
	e.port = (server.address() as AddressInfo).port;
	e.url = (p = '/report', host = '127.0.0.1') => `http://${host}:${e.port}${p}`;
	e.stop = () => new Promise<void>((r) => server.close(() => r()));
	return e;
}
