// Fuzz test of the frame decoder and of a mux session: garbage never throws, every malformed frame ends in an RST
// for its stream id or in a protocol error (which ends the session), and real streams the garbage does not aim at
// carry on untouched. Seeded: a failure names its seed; IK_TEST_SEED=<seed>[,<seed>…] replays it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setImmediate as nextTick } from 'node:timers/promises';
import {
  FRAME_HEADER_BYTES,
  Flag,
  FrameType,
  MAX_FRAME_PAYLOAD_BYTES,
  STREAM_WINDOW_BYTES,
  decodeFrame,
  encodeFrame,
  encodeWindow,
} from '../../../shared/protocol/frames.ts';
import { StreamResetError, type Mux, type MuxStream } from '../../../shared/protocol/mux.ts';
import { closedWith, createMuxPair, framesOf, makeRng, rawFrame, readAll, seedsFromEnv, writeChunk, type MuxPair, type Rng, type Side } from './pair.ts';

const KiB = 1024;
/** Garbage aims at ids from here up; real streams in a session stay far below. */
const GARBAGE_ID_MIN = 1_000_000;
const ITEMS_PER_SIDE = 2500;
/** Inputs whose framing itself is broken (each ends its session), per side. */
const MALFORMED_PER_SIDE = 1000;
const MALFORMED_KINDS = new Set(['random', 'truncated', 'header', 'oversized', 'windowBadLength', 'idZero']);
const REFUSED = 'not a test stream';

type Outcome = 'protocol-error' | 'rst' | 'ignored';

/**
 * What a yamux-like session must do with one binary message, judged from the bytes alone for a stream id the
 * session does not know: malformed framing is a protocol error; a SYN gets RST (wrong parity, bad flag mix, or refused
 * by onStream); DATA for an unknown stream gets RST; an RST or a WINDOW for an unknown stream needs no answer.
 */
function expectedOutcome(buf: Buffer): Outcome {
  if (!isWellFormed(buf)) return 'protocol-error';
  const flags = buf[1]!;
  if (buf.readUInt32BE(2) === 0) return 'protocol-error';
  if (buf[0] === FrameType.WINDOW) return 'ignored';
  if (flags & Flag.SYN) return 'rst';
  if (flags & Flag.RST) return 'ignored';
  return 'rst';
}

/** The framing rules of DESIGN.md §5, written out independently of decodeFrame. */
function isWellFormed(buf: Buffer): boolean {
  if (buf.length < FRAME_HEADER_BYTES) return false;
  const [type, flags] = [buf[0]!, buf[1]!];
  const payload = buf.length - FRAME_HEADER_BYTES;
  if (type !== FrameType.DATA && type !== FrameType.WINDOW) return false;
  if (flags > (Flag.SYN | Flag.ACK | Flag.FIN | Flag.RST)) return false;
  if (payload > MAX_FRAME_PAYLOAD_BYTES) return false;
  return type !== FrameType.WINDOW || payload === 4;
}

interface Garbage {
  kind: string;
  data: Buffer;
  expect: Outcome;
  /** For an expected RST: what its reason should say. */
  reason?: RegExp;
}

/** Ids one side has been fed this session: garbage never reuses one by accident (a closed id is dropped quietly). */
class IdBook {
  readonly used = new Set<number>();
  /** Ids whose garbage SYN reached onStream (and was refused): these sit in the mux's recently-closed set. */
  readonly offered: number[] = [];

  constructor(
    private readonly rng: Rng,
    /** The parity of the ids the peer of this side opens. */
    readonly peerParity: 0 | 1,
  ) {}

  fresh(parity: 0 | 1 = this.rng.chance(0.5) ? 0 : 1): number {
    for (;;) {
      const id = ((this.rng.int(GARBAGE_ID_MIN, 0xffff_fffe) & ~1) >>> 0) + parity;
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
  }
}

const rngFlags = (rng: Rng) => (rng.chance(0.8) ? rng.int(0, 15) : rng.int(0, 255));

/** Puts a fresh garbage id into a well-formed frame whose id could hit a real or an already used stream. */
function aimAway(buf: Buffer, ids: IdBook): Buffer {
  if (!isWellFormed(buf)) return buf;
  const id = buf.readUInt32BE(2);
  if (id !== 0 && (id < GARBAGE_ID_MIN || ids.used.has(id))) buf.writeUInt32BE(ids.fresh((id % 2) as 0 | 1), 2);
  else ids.used.add(id);
  return buf;
}

const generators: Record<string, (rng: Rng, ids: IdBook) => Omit<Garbage, 'kind' | 'expect'> & { expect?: Outcome }> = {
  random: (rng, ids) => ({ data: aimAway(rng.bytes(rng.int(0, 80)), ids) }),
  truncated: (rng, ids) => {
    const id = ids.fresh();
    const whole = rng.chance(0.5)
      ? encodeWindow(id, rng.int(0, 0xffffffff))
      : encodeFrame(FrameType.DATA, rng.int(0, 15), id, rng.bytes(rng.int(1, 200)));
    return { data: aimAway(Buffer.from(whole.subarray(0, rng.int(0, whole.length - 1))), ids) };
  },
  header: (rng, ids) => {
    const type = rng.chance(0.7) ? rng.int(0, 1) : rng.int(0, 255);
    const len = rng.chance(0.1) ? rng.int(MAX_FRAME_PAYLOAD_BYTES - 2, MAX_FRAME_PAYLOAD_BYTES + 64) : rng.int(0, 40);
    const id = rng.chance(0.05) ? 0 : ids.fresh();
    return { data: aimAway(rawFrame(type, rngFlags(rng), id, rng.bytes(len)), ids) };
  },
  oversized: (rng, ids) => ({
    data: rawFrame(rng.int(0, 1), rng.int(0, 15), ids.fresh(), Buffer.alloc(rng.int(MAX_FRAME_PAYLOAD_BYTES + 1, MAX_FRAME_PAYLOAD_BYTES + 4096))),
    expect: 'protocol-error',
  }),
  windowBadLength: (rng, ids) => {
    const len = rng.pick([0, 1, 2, 3, 5, 6, 8, rng.int(9, 64)]);
    return { data: rawFrame(FrameType.WINDOW, 0, ids.fresh(), rng.bytes(len)), expect: 'protocol-error' };
  },
  idZero: (rng) => ({ data: rawFrame(FrameType.DATA, rng.pick([0, Flag.SYN, Flag.FIN, Flag.ACK]), 0, rng.bytes(rng.int(0, 20))), expect: 'protocol-error' }),
  wrongParitySyn: (rng, ids) => ({
    data: rawFrame(FrameType.DATA, Flag.SYN, ids.fresh((1 - ids.peerParity) as 0 | 1), rng.bytes(rng.int(0, 40))),
    expect: 'rst',
    reason: /opens (odd|even) stream ids/,
  }),
  freshSyn: (rng, ids) => {
    const flags = Flag.SYN | (rng.chance(0.3) ? rng.pick([Flag.ACK, Flag.RST, Flag.ACK | Flag.RST, Flag.ACK | Flag.FIN]) : 0);
    const reason = flags & (Flag.ACK | Flag.RST) ? /cannot be combined/ : new RegExp(REFUSED);
    return { data: rawFrame(FrameType.DATA, flags, ids.fresh(ids.peerParity), rng.bytes(rng.int(0, 60))), expect: 'rst', reason };
  },
  duplicateSyn: (rng, ids) => {
    if (ids.offered.length === 0) return generators.freshSyn!(rng, ids);
    return { data: rawFrame(FrameType.DATA, Flag.SYN, rng.pick(ids.offered), Buffer.from('{}')), expect: 'rst', reason: /already in use/ };
  },
  dataUnknown: (rng, ids) => ({
    data: rawFrame(FrameType.DATA, rng.pick([0, Flag.FIN, Flag.ACK, Flag.ACK | Flag.FIN]), ids.fresh(), rng.bytes(rng.int(0, 100))),
    expect: 'rst',
    reason: /unknown stream/,
  }),
  rstUnknown: (rng, ids) => ({
    data: rawFrame(FrameType.DATA, Flag.RST | rng.pick([0, Flag.FIN, Flag.ACK]), ids.fresh(), rng.bytes(rng.int(0, 30))),
    expect: 'ignored',
  }),
  windowUnknown: (rng, ids) => ({ data: rawFrame(FrameType.WINDOW, 0, ids.fresh(), rng.bytes(4)), expect: 'ignored' }),
};

/** Relative weights; a clean session uses only the kinds that keep the session alive. */
const MIXED: Array<[string, number]> = [
  ['random', 20], ['truncated', 8], ['header', 12], ['oversized', 3], ['windowBadLength', 5], ['idZero', 2],
  ['wrongParitySyn', 8], ['freshSyn', 8], ['duplicateSyn', 6], ['dataUnknown', 10], ['rstUnknown', 8], ['windowUnknown', 6],
];
const CLEAN = MIXED.filter(([kind]) => ['wrongParitySyn', 'freshSyn', 'duplicateSyn', 'dataUnknown', 'rstUnknown', 'windowUnknown'].includes(kind));

function pickKind(rng: Rng, table: Array<[string, number]>): string {
  let roll = rng.next() * table.reduce((n, [, w]) => n + w, 0);
  for (const [kind, weight] of table) if ((roll -= weight) < 0) return kind;
  return table[0]![0];
}

function makeGarbage(rng: Rng, ids: IdBook, table: Array<[string, number]>): Garbage {
  const kind = pickKind(rng, table);
  const g = generators[kind]!(rng, ids);
  const judged = expectedOutcome(g.data);
  // The generator's own intent and the independent judgement agree, or the generator is wrong.
  if (g.expect) assert.equal(judged, g.expect, `generator ${kind} built a frame judged ${judged}`);
  return { kind, data: g.data, expect: judged, ...(g.reason ? { reason: g.reason } : {}) };
}

interface RealStream {
  opener: Side;
  payload: Buffer;
  stream: MuxStream;
  /** The echo the opener read back, or the error it ended with. */
  result: Promise<{ echoed: Buffer } | { error: unknown }>;
}

/** Opens real echo streams both ways and starts their transfers (the other side echoes, see onStream below). */
function startRealStreams(pair: MuxPair, rng: Rng): RealStream[] {
  const streams: RealStream[] = [];
  for (const opener of ['hub', 'agent', 'hub', 'agent'] as const) {
    const payload = rng.bytes(rng.chance(0.2) ? 0 : rng.int(1, 48 * KiB));
    const stream = (opener === 'hub' ? pair.hub : pair.agent).open(Buffer.from('{"real":true}'));
    const chunkSizes: number[] = [];
    for (let left = payload.length; left > 0; left -= chunkSizes.at(-1)!) chunkSizes.push(Math.min(left, rng.int(1, 16 * KiB)));
    const write = (async () => {
      let at = 0;
      for (const size of chunkSizes) {
        await writeChunk(stream, payload.subarray(at, (at += size)));
        await nextTick();
      }
      stream.end();
    })();
    const result = Promise.all([readAll(stream), write]).then(
      ([echoed]) => ({ echoed }),
      (error: unknown) => ({ error }),
    );
    write.catch(() => {}); // its failure is reported through `result`
    streams.push({ opener, payload, stream, result });
  }
  return streams;
}

function echoOrRefuse(stream: MuxStream): void {
  if (stream.id >= GARBAGE_ID_MIN) return stream.reject(REFUSED);
  stream.accept();
  stream.on('error', () => {}); // the opener's side reports what happened
  stream.pipe(stream);
}

interface Tally {
  items: Record<Side, number>;
  malformed: Record<Side, number>;
  sessions: number;
  protocolErrorSessions: number;
  outcomes: Record<string, number>;
}

/** One session: a fresh pair, real streams, garbage until the budget is spent or a protocol error ends it. */
async function runSession(rng: Rng, tally: Tally, clean: boolean): Promise<void> {
  const offered: Record<Side, number[]> = { hub: [], agent: [] };
  const pair = createMuxPair({
    seed: rng.int(1, 2 ** 31),
    hubOnStream: (s) => (offered.hub.push(s.id), echoOrRefuse(s)),
    agentOnStream: (s) => (offered.agent.push(s.id), echoOrRefuse(s)),
  });
  tally.sessions++;
  const ids: Record<Side, IdBook> = { hub: new IdBook(rng, 1), agent: new IdBook(rng, 0) };
  const real = startRealStreams(pair, rng);
  const realIds = new Set(real.map((r) => r.stream.id));
  const budget = clean ? rng.int(50, 300) : rng.int(1, 300);
  let protocolError = false;

  for (let fed = 0; fed < budget && !protocolError; ) {
    for (let batch = rng.int(1, 4); batch > 0 && fed < budget && !protocolError; batch--, fed++) {
      const side: Side = rng.chance(0.5) ? 'hub' : 'agent';
      const mux: Mux = side === 'hub' ? pair.hub : pair.agent;
      const g = makeGarbage(rng, ids[side], clean ? CLEAN : MIXED);
      const framesBefore = pair.frames.length;
      const errorsBefore = pair.protocolErrors.length;
      const offeredBefore = offered[side].length;
      const what = `${g.kind} ${g.data.subarray(0, 16).toString('hex')}… (${g.data.length} bytes) fed to the ${side}`;
      assert.doesNotThrow(() => mux.receive(g.data), `receive never throws: ${what}`);
      const sent = pair.frames.slice(framesBefore);
      const errors = pair.protocolErrors.slice(errorsBefore);
      tally.items[side]++;
      if (MALFORMED_KINDS.has(g.kind)) tally.malformed[side]++;
      tally.outcomes[`${g.kind}→${g.expect}`] = (tally.outcomes[`${g.kind}→${g.expect}`] ?? 0) + 1;
      if (g.expect === 'protocol-error') {
        assert.equal(errors.length, 1, `a protocol error: ${what}`);
        assert.equal(errors[0]!.side, side);
        assert.equal(pair.closed, true, 'the session ends');
        protocolError = true;
        continue;
      }
      assert.deepEqual(errors, [], `no protocol error: ${what}`);
      const id = g.data.readUInt32BE(2);
      if (g.expect === 'rst') {
        assert.equal(sent.length, 1, `one frame in answer: ${what}`);
        const rst = sent[0]!;
        assert.deepEqual([rst.from, rst.type, rst.flags & Flag.RST, rst.streamId], [side, FrameType.DATA, Flag.RST, id], `an RST for stream ${id}: ${what}`);
        if (g.reason) assert.match(rst.reason!, g.reason, what);
      } else {
        assert.deepEqual(sent, [], `no answer: ${what}`);
      }
      ids[side].offered.push(...offered[side].slice(offeredBefore));
    }
    await nextTick(); // the real streams move on between batches
  }

  const results = await Promise.all(real.map((r) => r.result));
  // The garbage never reset a real stream: only the end of the session may end one early.
  const realResets = framesOf(pair.frames, { flag: Flag.RST }).filter((f) => realIds.has(f.streamId));
  assert.deepEqual(realResets, [], 'no RST for a real stream');
  for (const [i, result] of results.entries()) {
    const r = real[i]!;
    if ('echoed' in result) {
      assert.ok(result.echoed.equals(r.payload), `real stream ${r.stream.id} echoed ${result.echoed.length} of ${r.payload.length} bytes intact`);
      continue;
    }
    assert.ok(protocolError, `real stream ${r.stream.id} (${r.opener}-opened) failed though no protocol error ended the session: ${String(result.error)}`);
    assert.ok(result.error instanceof StreamResetError, String(result.error));
    assert.match(result.error.reason, /^protocol error: /);
  }
  if (protocolError) {
    tally.protocolErrorSessions++;
  } else {
    await pair.settle();
    assert.equal(pair.hub.size, 0, 'the hub holds no stream');
    assert.equal(pair.agent.size, 0, 'the agent holds no stream');
  }
  pair.dispose();
}

describe('decodeFrame', () => {
  it('says exactly what is wrong with a malformed frame', () => {
    const cases: Array<[string, Buffer, string]> = [
      ['short frame', Buffer.from([0, 0, 0, 0, 1]), 'a stream frame is at least 6 bytes, got 5'],
      ['empty message', Buffer.alloc(0), 'a stream frame is at least 6 bytes, got 0'],
      ['unknown type', rawFrame(2, 0, 1), 'unknown stream frame type 2'],
      ['unknown type 255', rawFrame(255, 0, 1), 'unknown stream frame type 255'],
      ['unknown flags', rawFrame(FrameType.DATA, 0x10, 1), 'unknown stream frame flags 0x10'],
      ['unknown flags mixed with known', rawFrame(FrameType.DATA, 0x81 | Flag.SYN, 1), 'unknown stream frame flags 0x81'],
      ['oversize payload', rawFrame(FrameType.DATA, 0, 1, Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES + 1)), `a stream frame payload of ${MAX_FRAME_PAYLOAD_BYTES + 1} bytes is over the ${MAX_FRAME_PAYLOAD_BYTES}-byte limit`],
      ['WINDOW with 3 bytes', rawFrame(FrameType.WINDOW, 0, 1, Buffer.alloc(3)), 'a WINDOW frame carries 4 bytes, got 3'],
      ['WINDOW with 5 bytes', rawFrame(FrameType.WINDOW, 0, 1, Buffer.alloc(5)), 'a WINDOW frame carries 4 bytes, got 5'],
    ];
    for (const [name, buf, error] of cases) assert.deepEqual(decodeFrame(buf), { ok: false, error }, name);
  });

  it('decodes what encodeFrame and encodeWindow write, up to the payload limit', () => {
    const full = Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES, 0xab);
    assert.deepEqual(decodeFrame(encodeFrame(FrameType.DATA, Flag.SYN | Flag.FIN, 0xffffffff, full)), {
      ok: true,
      frame: { type: FrameType.DATA, flags: Flag.SYN | Flag.FIN, streamId: 0xffffffff, payload: full },
    });
    const window = decodeFrame(encodeWindow(7, STREAM_WINDOW_BYTES));
    assert.ok(window.ok, 'a WINDOW frame decodes');
    assert.deepEqual([window.frame.type, window.frame.streamId, window.frame.payload.readUInt32BE(0)], [FrameType.WINDOW, 7, STREAM_WINDOW_BYTES]);
    assert.deepEqual(decodeFrame(encodeFrame(FrameType.DATA, 0, 3)), { ok: true, frame: { type: FrameType.DATA, flags: 0, streamId: 3, payload: Buffer.alloc(0) } });
  });

  it('honours a smaller payload limit', () => {
    assert.deepEqual(decodeFrame(rawFrame(FrameType.DATA, 0, 1, Buffer.alloc(11)), 10), { ok: false, error: 'a stream frame payload of 11 bytes is over the 10-byte limit' });
    assert.equal(decodeFrame(rawFrame(FrameType.DATA, 0, 1, Buffer.alloc(10)), 10).ok, true);
  });

  it('never throws on random bytes and agrees with the framing rules', () => {
    const rng = makeRng(0xdec0de);
    for (let i = 0; i < 20_000; i++) {
      const buf = rng.chance(0.5) ? rng.bytes(rng.int(0, 80)) : rawFrame(rng.int(0, 2), rngFlags(rng), rng.int(0, 0xffffffff), rng.bytes(rng.int(0, 12)));
      const decoded = decodeFrame(buf);
      assert.equal(decoded.ok, isWellFormed(buf), buf.toString('hex'));
      if (decoded.ok) assert.deepEqual(encodeFrame(decoded.frame.type, decoded.frame.flags, decoded.frame.streamId, decoded.frame.payload), buf);
    }
  });
});

describe('mux session fuzz', () => {
  for (const seed of seedsFromEnv([0xf022, 31337])) {
    it(`seed ${seed}: garbage ends in RST or a protocol error, real streams carry on`, { timeout: 60_000 }, async (t) => {
      const rng = makeRng(seed);
      const tally: Tally = { items: { hub: 0, agent: 0 }, malformed: { hub: 0, agent: 0 }, sessions: 0, protocolErrorSessions: 0, outcomes: {} };
      try {
        const enough = (side: Side) => tally.items[side] >= ITEMS_PER_SIDE && tally.malformed[side] >= MALFORMED_PER_SIDE;
        while (!enough('hub') || !enough('agent')) await runSession(rng, tally, rng.chance(0.1));
      } catch (err) {
        console.error(`mux fuzz test failed with seed ${seed}; replay with IK_TEST_SEED=${seed}`);
        throw err;
      }
      t.diagnostic(`seed ${seed}: ${tally.items.hub} items to the hub (${tally.malformed.hub} malformed), ${tally.items.agent} to the agent (${tally.malformed.agent} malformed), ${tally.sessions} sessions (${tally.protocolErrorSessions} ended by a protocol error)`);
      t.diagnostic(Object.entries(tally.outcomes).sort().map(([k, n]) => `${k} ${n}`).join(', '));
      // Every outcome was exercised.
      for (const outcome of ['protocol-error', 'rst', 'ignored']) assert.ok(Object.keys(tally.outcomes).some((k) => k.endsWith(outcome)), outcome);
      assert.ok(tally.sessions - tally.protocolErrorSessions > 10, 'some sessions ran their real streams to the end');
    });
  }

  it('a receive() after a protocol error is ignored once the session is closed', async () => {
    const pair = createMuxPair({ agentOnStream: echoOrRefuse });
    pair.hub.receive(Buffer.from([9, 9, 9]));
    assert.equal(pair.protocolErrors.length, 1);
    assert.match(pair.protocolErrors[0]!.reason, /at least 6 bytes/);
    pair.hub.receive(Buffer.from([9, 9, 9]));
    pair.hub.receive(rawFrame(FrameType.DATA, 0, 99, Buffer.from('x')));
    assert.equal(pair.protocolErrors.length, 1, 'a closed mux reports nothing more');
    assert.equal(pair.frames.length, 0);
    pair.dispose();
  });

  it('a flow-control breach on one real stream ends that stream only', async () => {
    const accepted: MuxStream[] = [];
    const pair = createMuxPair({
      agentOnStream: (s) => {
        accepted.push(s);
        s.accept();
      },
    });
    const [target, bystander] = [pair.hub.open(Buffer.from('{}')), pair.hub.open(Buffer.from('{}'))];
    await Promise.all([once(target, 'accepted'), once(bystander, 'accepted')]);
    const [targetServer, bystanderServer] = accepted as [MuxStream, MuxStream];
    const closed = [closedWith(target), closedWith(targetServer)];
    // Garbage aimed at the target's agent half: more DATA than its (unread) window allows.
    const frame = rawFrame(FrameType.DATA, 0, target.id, Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES));
    for (let i = 0; i <= STREAM_WINDOW_BYTES / MAX_FRAME_PAYLOAD_BYTES && !targetServer.destroyed; i++) pair.agent.receive(frame);
    const [hubSide, agentSide] = await Promise.all(closed);
    assert.ok(hubSide instanceof StreamResetError && /flow control violated/.test(hubSide.reason), `hub side: ${String(hubSide)}`);
    assert.ok(agentSide instanceof StreamResetError && /flow control violated/.test(agentSide.reason), `agent side: ${String(agentSide)}`);
    // The bystander still works both ways.
    const request = Buffer.alloc(300 * KiB, 1);
    bystander.end(request);
    const [got] = await Promise.all([readAll(bystanderServer), writeChunk(bystanderServer, Buffer.from('ok'))]);
    bystanderServer.end();
    assert.ok(got.equals(request), `the bystander got ${got.length} of ${request.length} bytes intact`);
    assert.equal((await readAll(bystander)).toString(), 'ok');
    await pair.settle();
    assert.deepEqual(pair.protocolErrors, []);
    assert.equal(pair.hub.size, 0);
    assert.equal(pair.agent.size, 0);
    pair.dispose();
  });
});
