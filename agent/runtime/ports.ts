// Port allocation on the host: a port free on 127.0.0.1 at this moment (several agents may share a host).
import { createServer } from 'node:net';

export function allocatePort(avoid: ReadonlySet<number> = new Set()): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        if (!port) return reject(new Error('could not allocate a port on 127.0.0.1'));
        // A port another replica was just given (and has not bound yet) is not taken twice.
        if (avoid.has(port)) return resolve(allocatePort(avoid));
        resolve(port);
      });
    });
  });
}
