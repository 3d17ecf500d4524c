// vLLM's realtime route shape, reduced to what tests of WebSocket relaying need: `GET /v1/realtime` upgrades to a
// WebSocket that echoes every text and binary message as it came. Other upgrade paths answer 404 as FastAPI does.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { REPLICA_HEADER } from './server.ts';
import type { Sim } from './state.ts';

export const REALTIME_PATH = '/v1/realtime';

export function attachRealtime(server: Server, sim: Sim): void {
  // The first offered subprotocol is selected (ws's default), so tests can check it passes through.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on('headers', (headers) => headers.push(`${REPLICA_HEADER}: ${sim.knobs.replicaId}`));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '/').split('?')[0];
    if (path !== REALTIME_PATH || sim.config.flavour === 'ollama') return refuse(socket, 404, '{"detail":"Not Found"}');
    if (!sim.ready) return refuse(socket, 503, JSON.stringify({ error: { message: 'The server is still starting', type: 'ServiceUnavailableError', param: null, code: 503 } }));
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.on('error', () => ws.terminate());
    });
  });
}

function refuse(socket: Duplex, status: 404 | 503, body: string): void {
  const reason = status === 404 ? 'Not Found' : 'Service Unavailable';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
