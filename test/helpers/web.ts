// A real web server for the network tests: Debian's nginx on 127.0.0.1 with a
// private configuration in a temp dir (Range, strong ETags, `limit_rate`
// under /slow/), optionally TLS with a CA made by openssl; and a small fault
// proxy in front of it that counts the body bytes it passed per path and can
// cut a transfer after N bytes, stall, answer 503, or ignore Range.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { holdPort } from './ports.ts';
import { sh, tmpDir } from './sys.ts';

async function waitPort(port: number): Promise<void> {
	for (let i = 0; i < 100; i++) {
		const ok = await new Promise<boolean>((r) => {
			const c = net.connect(port, '127.0.0.1', () => {
				c.end();
				r(true);
			});
			c.on('error', () => r(false));
		});
		if (ok) return;
		await new Promise((r) => setTimeout(r, 50));
	}
	throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

export type Tls = { ca: string; cert: string; key: string };

/** A CA and a server certificate for 127.0.0.1 (subjectAltName IP), made with openssl. */
export function makeTls(): Tls {
	const d = tmpDir('reimage-tls-');
	const f = (n: string) => path.join(d, n);
	sh('openssl', [
		'req',
		'-x509',
		'-newkey',
		'ec',
		'-pkeyopt',
		'ec_paramgen_curve:prime256v1',
		'-nodes',
		'-keyout',
		f('ca.key'),
		'-out',
		f('ca.pem'),
		'-days',
		'2',
		'-subj',
		'/CN=reimage test CA',
	]);
	sh('openssl', [
		'req',
		'-newkey',
		'ec',
		'-pkeyopt',
		'ec_paramgen_curve:prime256v1',
		'-nodes',
		'-keyout',
		f('server.key'),
		'-out',
		f('server.csr'),
		'-subj',
		'/CN=127.0.0.1',
	]);
	fs.writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\n');
	sh('openssl', [
		'x509',
		'-req',
		'-in',
		f('server.csr'),
		'-CA',
		f('ca.pem'),
		'-CAkey',
		f('ca.key'),
		'-CAcreateserial',
		'-out',
		f('server.pem'),
		'-days',
		'2',
		'-extfile',
		f('ext'),
	]);
	return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

export type Nginx = { root: string; port: number; tlsPort?: number; url: (p: string) => string; stop: () => Promise<void> };

/** nginx serving ROOT on a free port (and TLS on another); /slow/ is ROOT at `slowRate` bytes/s; /private/ is ROOT behind HTTP basic auth as `basicAuth`. */
export async function startNginx(
	root: string,
	opts: { tls?: Tls; slowRate?: string; basicAuth?: { user: string; password: string } } = {},
): Promise<Nginx> {
	const d = tmpDir('reimage-nginx-');
	if (opts.basicAuth) {
		const hash = sh('openssl', ['passwd', '-apr1', opts.basicAuth.password]).trim();
		fs.writeFileSync(path.join(d, 'htpasswd'), `${opts.basicAuth.user}:${hash}\n`);
	}
	// Held by this process (ports.ts): nothing else takes them before nginx listens, or answers there once it stopped.
	const port = holdPort();
	const tlsPort = opts.tls ? holdPort() : undefined;
	const tls = opts.tls
		? `server { listen 127.0.0.1:${tlsPort} ssl; ssl_certificate ${opts.tls.cert}; ssl_certificate_key ${opts.tls.key}; root ${root}; }`
		: '';
	const conf = `
worker_processes 1;
user root;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fcgi; uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /slow/ { alias ${root}/; limit_rate ${opts.slowRate ?? '256k'}; }
    ${opts.basicAuth ? `location /private/ { alias ${root}/; auth_basic "reimage test"; auth_basic_user_file ${d}/htpasswd; }` : ''}
  }
  ${tls}
}`;
	fs.writeFileSync(path.join(d, 'nginx.conf'), conf);
	const child: ChildProcess = spawn('nginx', ['-p', d, '-c', path.join(d, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
	let exited = false;
	child.on('exit', () => (exited = true));
	// A test process that ends early (a failure, a timeout) must not leave nginx behind.
	process.on('exit', () => {
		if (!exited) child.kill('SIGKILL');
	});
	await waitPort(port);
	if (tlsPort) await waitPort(tlsPort);
	return {
		root,
		port,
		...(tlsPort ? { tlsPort } : {}),
		url: (p) => `http://127.0.0.1:${port}${p}`,
		stop: async () => {
			if (exited) return;
			const gone = new Promise((r) => child.on('exit', r));
			child.kill('SIGQUIT');
			await gone;
		},
	};
}

export type Fault = {
	/** Only requests for this path (without /slow) meet the fault; others pass (default: every path). */
	path?: string;
	/** Close the connection after this many body bytes of a response (once per response while `cuts` > 0). */
	cutAfter?: number;
	cuts?: number;
	/** Stop sending (connection kept open) once this many body bytes of the path were passed in all. */
	stallAt?: number;
	/** Answer 503 to this many requests first. */
	fail503?: number;
	/** Drop the Range and If-Range headers (a server that ignores ranges). */
	ignoreRange?: boolean;
};

export type FaultProxy = {
	url: (p: string) => string;
	fault: Fault;
	/** Body bytes passed per path. */
	served: Map<string, number>;
	requests: { path: string; range?: string; status: number }[];
	stop: () => Promise<void>;
};

/** A fault proxy on a free port in front of UPSTREAM (port). */
export async function startProxy(upstream: number): Promise<FaultProxy> {
	const served = new Map<string, number>();
	const requests: FaultProxy['requests'] = [];
	const p: FaultProxy = { url: () => '', fault: {}, served, requests, stop: async () => {} };
	const sockets = new Set<net.Socket>();
	const server = http.createServer((req, res) => {
		const key = (req.url ?? '').replace(/^\/slow/, '');
		const f = p.fault.path === undefined || p.fault.path === key ? p.fault : {};
		if ((f.fail503 ?? 0) > 0) {
			f.fail503 = (f.fail503 ?? 1) - 1;
			requests.push({ path: key, status: 503 });
			res.writeHead(503, { 'content-length': '0' }).end();
			return;
		}
		const headers = { ...req.headers };
		if (f.ignoreRange) {
			delete headers.range;
			delete headers['if-range'];
		}
		const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers }, (ur) => {
			requests.push({ path: key, ...(req.headers.range ? { range: req.headers.range } : {}), status: ur.statusCode ?? 0 });
			res.writeHead(ur.statusCode ?? 502, ur.headers);
			let sent = 0;
			const cut = f.cutAfter !== undefined && (f.cuts ?? 1) > 0;
			if (cut) f.cuts = (f.cuts ?? 1) - 1;
			ur.on('data', (chunk: Buffer) => {
				let c = chunk;
				const before = served.get(key) ?? 0;
				if (f.stallAt !== undefined && before + c.length > f.stallAt) {
					c = c.subarray(0, Math.max(0, f.stallAt - before));
					ur.pause();
				}
				if (cut && sent + c.length > (f.cutAfter ?? 0)) {
					c = c.subarray(0, (f.cutAfter ?? 0) - sent);
					served.set(key, before + c.length);
					res.write(c, () => res.destroy());
					ur.destroy();
					return;
				}
				sent += c.length;
				served.set(key, before + c.length);
				if (c.length) res.write(c);
			});
			ur.on('end', () => res.end());
		});
		up.on('error', () => res.destroy());
		req.pipe(up);
	});
	server.on('connection', (s) => {
		sockets.add(s);
		s.on('close', () => sockets.delete(s));
	});
	const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
	p.url = (x) => `http://127.0.0.1:${port}${x}`;
	p.stop = async () => {
		for (const s of sockets) s.destroy();
		await new Promise((r) => server.close(r));
	};
	return p;
}

/**
 * Run the built binary without blocking the event loop (the fault proxy lives
 * in this process: a spawnSync would starve it). Never rejects on a non-zero exit.
 */
export function reimageAsync(
	bin: string,
	args: readonly string[],
): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
		let stdout = '';
		let stderr = '';
		child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
		child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
		child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
	});
}
