// Loopback ports for the network tests' servers, held by this process so that
// nothing else on the machine (the other VM lane, an outgoing connection) can
// take one between the test choosing it and a server listening on it, or
// answer on it once that server has stopped.
//
// A held port is a bound TCP socket that does not listen (node:net has no such
// thing: the binding under it does). Linux refuses connections to its port,
// and gives the port to no other socket that asks for any free one (a listener
// on port 0, an outgoing connection); a server still binds it by number (both
// sockets set SO_REUSEADDR, and this one does not listen).
type Bound = { bind: (host: string, port: number) => number; getsockname: (out: { port?: number }) => number; unref: () => void };
const tcp = (
	process as unknown as { binding: (name: 'tcp_wrap') => { TCP: new (type: number) => Bound; constants: { SOCKET: number } } }
).binding('tcp_wrap');

const held = new Map<number, Bound>();

// holdPort: PORT (0: a free one) on 127.0.0.1, held until this process exits; a server may listen on it, and again after it stopped.
export function holdPort(port = 0): number {
	if (held.has(port)) return port;
	const h = new tcp.TCP(tcp.constants.SOCKET);
	const err = h.bind('127.0.0.1', port);
	const out: { port?: number } = {};
	if (err || h.getsockname(out) || !out.port) throw new Error(`cannot hold port ${port} on 127.0.0.1 (errno ${err})`);
	h.unref();
	held.set(out.port, h);
	return out.port;
}

// closedPort: a port on 127.0.0.1 that refuses connections while this process runs (a server that is down).
export const closedPort = (): number => holdPort();
