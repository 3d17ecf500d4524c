// The tunnel endpoint: upgrades `/agent/connect` to a WebSocket and hands it to an AgentSession.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AgentSession, type SessionDeps } from './session.ts';

export const AGENT_CONNECT_PATH = '/agent/connect';

export function createTunnelServer(deps: SessionDeps & { maxFrameBytes: number }) {
  // maxPayload makes the socket itself refuse an oversized frame (close 1009) before any of it is buffered.
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxFrameBytes, perMessageDeflate: false });

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      const token = bearerToken(req.headers.authorization);
      wss.handleUpgrade(req, socket, head, (ws) => {
        new AgentSession(ws, token, deps, req.socket.remoteAddress);
      });
    },
    /** Tells every agent the hub is going away (they reconnect with backoff), then closes the sockets. */
    close(): void {
      deps.sessions.closing = true;
      for (const session of deps.sessions.all()) session.goAway('shutdown', 'hub is shutting down');
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
