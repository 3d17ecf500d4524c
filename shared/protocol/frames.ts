// Stream frames of the tunnel (binary WebSocket messages): a 6-byte header [type u8][flags u8][stream id u32 BE],
// then the payload. Semantics follow yamux: SYN opens, ACK accepts, FIN half-closes, RST aborts; WINDOW grants credit.

export const FRAME_HEADER_BYTES = 6;

export const FrameType = { DATA: 0, WINDOW: 1 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const Flag = { SYN: 1, ACK: 2, FIN: 4, RST: 8 } as const;
const KNOWN_FLAGS = Flag.SYN | Flag.ACK | Flag.FIN | Flag.RST;

/** Credit each side of a stream starts with, and the most a peer may have in flight unacknowledged. */
export const STREAM_WINDOW_BYTES = 256 * 1024;
/** The largest payload in one frame; bigger writes are split. */
export const MAX_FRAME_PAYLOAD_BYTES = 64 * 1024;

export interface Frame {
  type: FrameType;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function encodeFrame(type: FrameType, flags: number, streamId: number, payload: Buffer = EMPTY): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame[0] = type;
  frame[1] = flags;
  frame.writeUInt32BE(streamId, 2);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** A WINDOW frame's payload: the credit granted, u32 BE. */
export function encodeWindow(streamId: number, delta: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  frame[0] = FrameType.WINDOW;
  frame[1] = 0;
  frame.writeUInt32BE(streamId, 2);
  frame.writeUInt32BE(delta, FRAME_HEADER_BYTES);
  return frame;
}

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: string };

/** Decodes one binary message; anything malformed is reported, never thrown. */
export function decodeFrame(buf: Buffer, maxPayload = MAX_FRAME_PAYLOAD_BYTES): DecodeResult {
  if (buf.length < FRAME_HEADER_BYTES) return { ok: false, error: `a stream frame is at least ${FRAME_HEADER_BYTES} bytes, got ${buf.length}` };
  const type = buf[0]!;
  const flags = buf[1]!;
  if (type !== FrameType.DATA && type !== FrameType.WINDOW) return { ok: false, error: `unknown stream frame type ${type}` };
  if ((flags & ~KNOWN_FLAGS) !== 0) return { ok: false, error: `unknown stream frame flags 0x${flags.toString(16)}` };
  const payload = buf.subarray(FRAME_HEADER_BYTES);
  if (payload.length > maxPayload) return { ok: false, error: `a stream frame payload of ${payload.length} bytes is over the ${maxPayload}-byte limit` };
  if (type === FrameType.WINDOW && payload.length !== 4) return { ok: false, error: `a WINDOW frame carries 4 bytes, got ${payload.length}` };
  return { ok: true, frame: { type, flags, streamId: buf.readUInt32BE(2), payload } };
}

const EMPTY = Buffer.alloc(0);
