// The agent's end of a relayed request: a stream from the hub is dialed through to its replica's backend on
// 127.0.0.1 (ACK once connected, RST with the reason when the dial fails), then bytes flow both ways untouched.
import { connect } from 'node:net';
import type { Logger } from '../shared/logger.ts';
import type { MuxStream } from '../shared/protocol/mux.ts';
import { decodeTarget } from '../shared/protocol/streams.ts';

const DIAL_TIMEOUT_MS = 5000;

export interface RelayDeps {
  /** The backend port of a replica this agent runs and that can take requests, or a reason why not. */
  portOf(replicaId: string): { port: number } | { error: string };
  log: Logger;
}

export function relayStream(stream: MuxStream, syn: Buffer, deps: RelayDeps): void {
  const decoded = decodeTarget(syn);
  if (!decoded.ok) return stream.reject(decoded.error);
  const target = decoded.target;
  const found = deps.portOf(target.replica_id);
  if ('error' in found) return stream.reject(found.error);

  const socket = connect({ host: '127.0.0.1', port: found.port, noDelay: true });
  const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${DIAL_TIMEOUT_MS} ms`)), DIAL_TIMEOUT_MS);
  let connected = false;
  socket.once('connect', () => {
    clearTimeout(timer);
    connected = true;
    stream.accept();
    stream.pipe(socket);
    socket.pipe(stream);
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (!connected) {
      stream.reject(`dialing replica ${target.replica_id} on 127.0.0.1:${found.port} failed: ${err.code ?? err.message}`);
      return;
    }
    deps.log.debug({ replicaId: target.replica_id, err: err.message }, 'backend connection failed mid-stream');
    stream.destroy(err);
  });
  // The hub (or its client) gave up: the backend sees its connection close and aborts the request.
  stream.on('error', () => socket.destroy());
  stream.on('close', () => {
    if (!socket.destroyed && !stream.writableFinished) socket.destroy();
  });
  socket.on('close', () => {
    if (!stream.destroyed) stream.end();
  });
}
