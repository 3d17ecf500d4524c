// Frames sent in one turn of the event loop leave in one system call: the socket is corked at the first frame and
// uncorked once this turn's I/O callbacks have run (setImmediate), so frames of concurrent requests share a write. A relayed request is several frames (SYN, data, FIN, window updates); one writev each
// turn instead of one per frame is most of the tunnel's cost at high request rates.
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';

/** The TCP socket under a `ws` WebSocket (ws has no public cork; `_socket` is its documented-in-source field). */
export function socketOf(ws: WebSocket): Duplex | undefined {
  return (ws as unknown as { _socket?: Duplex })._socket;
}

export function batchedBinarySender(ws: WebSocket): (frame: Buffer) => void {
  let corked: Duplex | undefined;
  return (frame) => {
    if (ws.readyState !== ws.OPEN) return;
    if (!corked) {
      corked = socketOf(ws);
      if (corked) {
        const socket = corked;
        socket.cork();
        setImmediate(() => {
          corked = undefined;
          socket.uncork();
        });
      }
    }
    ws.send(frame, { binary: true });
  };
}
