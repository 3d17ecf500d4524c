// WebSocket upgrades under /endpoint/{p}/{w}/v1/…: the data key is checked before anything is upgraded (as a header,
// or as the subprotocol `ik.key.<key>` browsers can send), then `…/v1/ws` speaks the hub's message protocol and any
// other path is relayed frame for frame to a replica.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Admitted } from './data-plane.ts';
import { presentedKey } from './key-auth.ts';
import { DataPlaneError } from './openai-error.ts';
import { ENDPOINT_PREFIX } from './routes.ts';
import { WsClient } from './ws-client.ts';
import { KEY_PROTOCOL_PREFIX, offeredKeyProtocol, refuseUpgrade, relayWebSocket } from './ws-passthrough.ts';
import type { WsDeps } from './ws-request.ts';

/** The route of the message protocol, after /v1/. */
export const MESSAGE_PROTOCOL_ROUTE = 'ws';

const PATH_RE = new RegExp(`^${ENDPOINT_PREFIX}/([^/]+)/([^/]+)/v1/(.+?)/*$`);

export interface WsGateway {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Ends every client socket and relayed WebSocket (hub shutdown). */
  close(): void;
}

export function createWsGateway(deps: WsDeps): WsGateway {
  const wss = new WebSocketServer({
    noServer: true,
    // A message larger than this closes the socket (1009) before it is buffered whole.
    maxPayload: deps.config.maxMessageBytes,
    perMessageDeflate: false,
    // The key protocol is the only one this server speaks; a browser needs an offered protocol selected.
    handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith(KEY_PROTOCOL_PREFIX)) ?? false,
  });
  const clients = new Set<WsClient>();
  const relayed = new Set<[Duplex, Duplex]>();

  return {
    handleUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const target = parseTarget(q >= 0 ? url.slice(0, q) : url);
      if (!target) {
        return refuseUpgrade(socket, new DataPlaneError(404, `no WebSocket route ${url.split('?')[0]}: use ${ENDPOINT_PREFIX}/{project}/{workload}/v1/ws`, 'not_found_error', 'route_not_found'));
      }
      // A key offered as a subprotocol counts as one sent as a header (a header, when both come, wins).
      const keyProtocol = offeredKeyProtocol(req);
      if (keyProtocol && !presentedKey(req.headers)) req.headers.authorization = `Bearer ${keyProtocol.slice(KEY_PROTOCOL_PREFIX.length)}`;
      let admitted: Admitted;
      try {
        admitted = deps.dataPlane.admit(req, target.project, target.workload);
      } catch (err) {
        if (!(err instanceof DataPlaneError)) deps.log.error({ err }, 'websocket admission failed');
        return refuseUpgrade(socket, err instanceof DataPlaneError ? err : new DataPlaneError(500, 'internal error: the hub logged the details', 'api_error', 'internal_error'));
      }
      if (target.route === MESSAGE_PROTOCOL_ROUTE) {
        wss.handleUpgrade(req, socket, head, (ws) => {
          const client = new WsClient(ws, req, target.project, target.workload, deps);
          clients.add(client);
          ws.once('close', () => clients.delete(client));
        });
        return;
      }
      const invalid = invalidUpgrade(req);
      if (invalid) return refuseUpgrade(socket, new DataPlaneError(400, invalid, 'invalid_request_error', 'invalid_upgrade'));
      const path = `/v1/${target.route}${q >= 0 ? url.slice(q) : ''}`;
      relayWebSocket(deps, req, socket, head, admitted, { route: target.route, path }, (pair) => {
        relayed.add(pair);
        return () => relayed.delete(pair);
      }).catch((err: unknown) => {
        deps.log.error({ err }, 'websocket relay failed');
        socket.destroy();
      });
    },
    close() {
      for (const client of clients) client.terminate();
      for (const [a, b] of relayed) a.destroy(), b.destroy();
      wss.close();
    },
  };
}

function parseTarget(path: string): { project: string; workload: string; route: string } | undefined {
  const m = PATH_RE.exec(path);
  if (!m) return undefined;
  try {
    // A relayed path stays under the backend's /v1/: no dot segments, encoded or not.
    if (m[3]!.split('/').some((s) => ['.', '..'].includes(decodeURIComponent(s)))) return undefined;
    return { project: decodeURIComponent(m[1]!), workload: decodeURIComponent(m[2]!), route: m[3]! };
  } catch {
    return undefined;
  }
}

/** What ws itself checks for the message protocol, checked for relayed upgrades too: the backend gets only real ones. */
function invalidUpgrade(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return `a WebSocket upgrade is a GET, not ${req.method ?? '?'}`;
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'only WebSocket upgrades are relayed ("Upgrade: websocket")';
  if (!req.headers['sec-websocket-key']) return 'the upgrade request has no Sec-WebSocket-Key';
  return undefined;
}
