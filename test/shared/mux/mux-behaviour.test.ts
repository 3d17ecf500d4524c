// The stream multiplexer, one behaviour at a time: opening, accepting, refusing, half-closing, resetting and flow control.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Flag, FrameType, MAX_FRAME_PAYLOAD_BYTES, STREAM_WINDOW_BYTES } from '../../../shared/protocol/frames.ts';
import { StreamResetError, type MuxStream } from '../../../shared/protocol/mux.ts';
import { closedWith, createMuxPair, framesOf, rawFrame, readAll, ticksUntil, writeChunk, type PairOptions } from './pair.ts';

const KiB = 1024;

/** A pair whose agent accepts every stream (like a relay that reached its backend) and hands it to the test. */
function acceptingPair(opts: PairOptions = {}) {
  const accepted: Array<{ stream: MuxStream; syn: Buffer }> = [];
  const pair = createMuxPair({
    ...opts,
    agentOnStream: (stream, syn) => {
      accepted.push({ stream, syn });
      stream.accept();
    },
  });
  return { pair, accepted };
}

function assertReset(err: unknown, reason: string | RegExp, beforeAccept: boolean): void {
  assert.ok(err instanceof StreamResetError, `expected a StreamResetError, got ${String(err)}`);
  if (typeof reason === 'string') assert.equal(err.reason, reason);
  else assert.match(err.reason, reason);
  assert.equal(err.beforeAccept, beforeAccept);
}

describe('opening a stream', () => {
  it('delivers the SYN payload to the peer onStream', async () => {
    const syns: Buffer[] = [];
    const pair = createMuxPair({ agentOnStream: (_stream, syn) => syns.push(syn) });
    const target = Buffer.from(JSON.stringify({ replica_id: 'rep_1', kind: 'http', method: 'GET', path: '/v1/models', headers: {} }));
    const stream = pair.hub.open(target);
    assert.equal(stream.id % 2, 0, 'the hub opens even ids');
    await ticksUntil(() => syns.length > 0);
    assert.deepEqual(syns, [target]);
    pair.dispose();
    await closedWith(stream);
  });

  it("emits 'accepted' on the opener once the peer accepts, not before", async () => {
    let peer: MuxStream | undefined;
    const pair = createMuxPair({ hubOnStream: (stream) => (peer = stream) });
    const stream = pair.agent.open(Buffer.from('{}'));
    assert.equal(stream.id % 2, 1, 'the agent opens odd ids');
    let acceptedEvents = 0;
    stream.on('accepted', () => acceptedEvents++);
    await pair.settle();
    assert.ok(peer, 'the hub was offered the stream');
    assert.equal(acceptedEvents, 0, 'no ACK before accept()');
    assert.equal(stream.state, 'syn-sent');
    peer.accept();
    await once(stream, 'accepted');
    assert.equal(stream.state, 'open');
    assert.equal(framesOf(pair.frames, { from: 'hub', flag: Flag.ACK }).length, 1);
    stream.end();
    peer.end();
    peer.resume();
    stream.resume();
    await pair.settle();
    assert.equal(pair.hub.size, 0);
    assert.equal(pair.agent.size, 0);
  });

  it('reject(reason) errors the opener with that reason, before accept', async () => {
    const pair = createMuxPair({ agentOnStream: (stream) => stream.reject('dial 127.0.0.1:40001: connection refused') });
    const stream = pair.hub.open(Buffer.from('{}'));
    const err = await closedWith(stream);
    assertReset(err, 'dial 127.0.0.1:40001: connection refused', true);
    await pair.settle();
    assert.equal(pair.hub.size, 0);
    assert.equal(pair.agent.size, 0);
    assert.equal(framesOf(pair.frames, { flag: Flag.RST }).length, 1, 'one RST, no echo of it');
  });

  it('a peer without onStream refuses every SYN with RST', async () => {
    const pair = createMuxPair({}); // neither side takes streams
    const stream = pair.hub.open(Buffer.from('{}'));
    const err = await closedWith(stream);
    assertReset(err, /accepts no streams/, true);
    const rst = framesOf(pair.frames, { from: 'agent', flag: Flag.RST });
    assert.equal(rst.length, 1);
    assert.equal(rst[0]!.streamId, stream.id);
    assert.equal(pair.agent.size, 0);
  });

  it('maxStreams refuses the extra SYN with a reason naming the limit', async () => {
    const { pair, accepted } = acceptingPair({ maxStreams: 2 });
    const first = pair.hub.open(Buffer.from('1'));
    const second = pair.hub.open(Buffer.from('2'));
    const third = pair.hub.open(Buffer.from('3'));
    const err = await closedWith(third);
    assertReset(err, /too many open streams.*limit 2/, true);
    assert.equal(accepted.length, 2);
    assert.equal(first.destroyed, false);
    assert.equal(second.destroyed, false);
    // Once a stream is done, there is room again.
    first.end();
    accepted[0]!.stream.end();
    accepted[0]!.stream.resume();
    first.resume();
    await pair.settle();
    const fourth = pair.hub.open(Buffer.from('4'));
    await once(fourth, 'accepted');
    assert.equal(accepted.length, 3);
    pair.dispose();
    await Promise.all([closedWith(second), closedWith(fourth)]);
  });

  it('maxStreams counts the streams the peer opened, not the ones this side opened', {}, async () => {
    let hubAccepted = 0;
    const pair = createMuxPair({
      maxStreams: 2,
      agentOnStream: (stream) => stream.accept(),
      hubOnStream: (stream) => {
        hubAccepted++;
        stream.accept();
      },
    });
    const own = [pair.hub.open(Buffer.from('a')), pair.hub.open(Buffer.from('b'))];
    await Promise.all(own.map((s) => once(s, 'accepted')));
    const fromAgent = pair.agent.open(Buffer.from('c'));
    const outcome = await Promise.race([once(fromAgent, 'accepted').then(() => 'accepted'), closedWith(fromAgent).then((e) => `refused: ${e?.message}`)]);
    pair.dispose();
    assert.equal(outcome, 'accepted', 'the agent has no stream of its own open, so its first SYN is under the limit');
    assert.equal(hubAccepted, 1);
  });
});

describe('closing a stream', () => {
  it('FIN half-closes: after one side ends, the other can still send', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    const request = Buffer.from('POST /v1/completions\r\n\r\n{"prompt":"hi"}');
    client.end(request);
    const clientGot = readAll(client);
    await ticksUntil(() => accepted.length === 1);
    const server = accepted[0]!.stream;
    assert.deepEqual(await readAll(server), request, 'the server reads the request to its end');
    assert.equal(server.writable, true, 'the server can still write after the client FIN');
    await writeChunk(server, Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    await writeChunk(server, Buffer.from('streamed tokens'));
    server.end();
    assert.equal((await clientGot).toString(), 'HTTP/1.1 200 OK\r\n\r\nstreamed tokens');
    await pair.settle();
    assert.equal(framesOf(pair.frames, { flag: Flag.FIN }).length, 2, 'one FIN each way');
    assert.equal(framesOf(pair.frames, { flag: Flag.RST }).length, 0);
    assert.equal(pair.hub.size, 0);
    assert.equal(pair.agent.size, 0);
  });

  it('destroy() sends RST and the peer sees StreamResetError after accept', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    await once(client, 'accepted');
    const server = accepted[0]!.stream;
    const serverClosed = closedWith(server);
    client.destroy();
    assertReset(await serverClosed, /./, false);
    const rst = framesOf(pair.frames, { flag: Flag.RST });
    assert.equal(rst.length, 1);
    assert.equal(rst[0]!.from, 'hub');
    await pair.settle();
    assert.equal(pair.hub.size, 0);
    assert.equal(pair.agent.size, 0);
  });

  it('destroy(err) passes its message to the peer as the reason', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    await once(client, 'accepted');
    const serverClosed = closedWith(accepted[0]!.stream);
    client.on('error', () => {});
    client.destroy(new Error('client went away'));
    assertReset(await serverClosed, 'client went away', false);
  });

  it('close(reason) errors every open stream, whatever its state', async () => {
    let held: MuxStream | undefined;
    const pair = createMuxPair({
      agentOnStream: (stream, syn) => {
        if (syn.toString() === 'hold') held = stream; // a dial still in progress: no ACK yet
        else stream.accept();
      },
    });
    const open = pair.hub.open(Buffer.from('open'));
    const halfClosed = pair.hub.open(Buffer.from('half'));
    const pending = pair.hub.open(Buffer.from('hold'));
    await Promise.all([once(open, 'accepted'), once(halfClosed, 'accepted')]);
    halfClosed.end();
    await pair.settle();
    assert.ok(held, 'the agent holds the pending stream');
    const closed = [open, halfClosed, pending].map(closedWith);
    pair.hub.close('tunnel lost');
    const [e1, e2, e3] = await Promise.all(closed);
    assertReset(e1, 'tunnel lost', false);
    assertReset(e2, 'tunnel lost', false);
    assertReset(e3, 'tunnel lost', true);
    assert.equal(pair.hub.size, 0);
    assert.throws(() => pair.hub.open(Buffer.from('{}')), /closed/);
    pair.dispose();
  });
});

describe('flow control', () => {
  it('a peer that sends more than the window gets its stream reset with "flow control violated"', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    await once(client, 'accepted');
    const server = accepted[0]!.stream; // never read: no credit is granted back
    const serverClosed = closedWith(server);
    const clientClosed = closedWith(client);
    // A misbehaving hub: exactly the window is fine...
    const full = Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES, 1);
    for (let sent = 0; sent < STREAM_WINDOW_BYTES; sent += full.length) pair.agent.receive(rawFrame(FrameType.DATA, 0, client.id, full));
    assert.equal(server.destroyed, false);
    assert.equal(framesOf(pair.frames, { from: 'agent', flag: Flag.RST }).length, 0);
    // ...one byte more is not.
    pair.agent.receive(rawFrame(FrameType.DATA, 0, client.id, Buffer.from('x')));
    assertReset(await serverClosed, /flow control violated/, false);
    const rst = framesOf(pair.frames, { from: 'agent', flag: Flag.RST });
    assert.equal(rst.length, 1);
    assert.equal(rst[0]!.streamId, client.id);
    assert.match(rst[0]!.reason!, /flow control violated/);
    assertReset(await clientClosed, /flow control violated/, false);
    assert.deepEqual(pair.protocolErrors, [], 'a flow-control breach ends the stream, not the tunnel');
  });

  it('sends WINDOW updates only after half the window is consumed', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    const payload = Buffer.alloc(1024 * KiB, 7);
    client.end(payload);
    await ticksUntil(() => accepted.length === 1);
    const got = await readAll(accepted[0]!.stream);
    assert.equal(got.length, payload.length);
    const windows = framesOf(pair.frames, { from: 'agent', type: FrameType.WINDOW, streamId: client.id });
    const half = STREAM_WINDOW_BYTES / 2;
    assert.ok(windows.length >= 7 && windows.length <= 8, `about 1 MiB / 128 KiB updates, got ${windows.length}`);
    for (const w of windows) assert.ok(w.delta! >= half, `a WINDOW update grants at least half the window, got ${w.delta}`);
    assert.ok(pair.maxInFlight() <= STREAM_WINDOW_BYTES, `at most the window in flight, got ${pair.maxInFlight()}`);
    accepted[0]!.stream.end();
    await pair.settle();
    assert.equal(pair.hub.size, 0);
  });

  it('a reader that never reads stops the sender at exactly the window', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    let written = false;
    client.write(Buffer.alloc(1024 * KiB, 3), () => (written = true));
    await ticksUntil(() => accepted.length === 1);
    await pair.settle();
    const dataBytes = () => framesOf(pair.frames, { from: 'hub', type: FrameType.DATA, streamId: client.id }).reduce((n, f) => n + (f.flags & Flag.SYN ? 0 : f.payloadLength), 0);
    assert.equal(dataBytes(), STREAM_WINDOW_BYTES, 'exactly the window is in flight');
    assert.equal(pair.maxInFlight(), STREAM_WINDOW_BYTES);
    assert.equal(written, false, "the sender's write is still pending");
    const framesBefore = pair.frames.length;
    await ticksUntil(() => false, 200);
    assert.equal(pair.frames.length, framesBefore, 'nothing more is sent while the reader is stalled');
    // The reader comes back: everything flows.
    const server = accepted[0]!.stream;
    client.end();
    const got = await readAll(server);
    assert.equal(got.length, 1024 * KiB);
    assert.equal(written, true);
    assert.deepEqual(pair.violations, []);
    server.end();
    await pair.settle();
    assert.equal(pair.hub.size, 0);
    assert.equal(pair.agent.size, 0);
  });

  it('a pause()d reader that resumes gets everything', async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    client.end(Buffer.alloc(700 * KiB, 5));
    await ticksUntil(() => accepted.length === 1);
    const server = accepted[0]!.stream;
    const got = readAll(server);
    server.pause();
    await pair.settle();
    server.resume();
    assert.equal((await got).length, 700 * KiB);
    server.end();
    await pair.settle();
    assert.equal(pair.agent.size, 0);
  });

  it('a reader using for await (read() of the whole buffer) gets everything', {}, async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    client.end(Buffer.alloc(1024 * KiB, 9));
    await ticksUntil(() => accepted.length === 1);
    await pair.settle(); // the reader is busy at first: a full window waits in its buffer
    let got = 0;
    let done = false;
    void (async () => {
      for await (const chunk of accepted[0]!.stream) got += (chunk as Buffer).length;
      done = true;
    })().catch(() => {});
    await ticksUntil(() => done, 5_000);
    pair.dispose();
    assert.equal(got, 1024 * KiB, `the reader got ${got} bytes`);
  });
});

describe('hostile or careless peers', () => {
  it('a duplicate SYN for a live stream resets that stream on both sides', {}, async () => {
    const { pair, accepted } = acceptingPair();
    const client = pair.hub.open(Buffer.from('{}'));
    client.on('error', () => {});
    await once(client, 'accepted');
    const server = accepted[0]!.stream;
    server.on('error', () => {});
    pair.agent.receive(rawFrame(FrameType.DATA, Flag.SYN, client.id, Buffer.from('{}')));
    await pair.settle();
    const sizes = { hub: pair.hub.size, agent: pair.agent.size, serverDestroyed: server.destroyed };
    pair.dispose();
    assert.deepEqual(sizes, { hub: 0, agent: 0, serverDestroyed: true });
  });

  it('a SYN that also carries FIN opens a half-closed stream (or is refused)', {}, async () => {
    let server: MuxStream | undefined;
    const pair = createMuxPair({ agentOnStream: (stream) => (server = stream) });
    pair.hold(); // only what the test feeds the agent
    pair.agent.receive(rawFrame(FrameType.DATA, Flag.SYN | Flag.FIN, 2, Buffer.from('{}')));
    const refused = framesOf(pair.frames, { from: 'agent', flag: Flag.RST }).length > 0;
    let ended = false;
    server?.on('end', () => (ended = true)).resume();
    await ticksUntil(() => ended, 100);
    pair.dispose();
    assert.ok(refused || ended, 'either an RST or an ended readable side');
  });

  it('open() refuses a SYN payload over the frame limit rather than sending a frame that ends the tunnel', {}, async () => {
    const { pair } = acceptingPair({ onProtocolError: () => {} }); // recorded in pair.protocolErrors; torn down below
    const bystander = pair.hub.open(Buffer.from('{}'));
    bystander.on('error', () => {});
    await once(bystander, 'accepted');
    let threw = false;
    try {
      const big = pair.hub.open(Buffer.alloc(MAX_FRAME_PAYLOAD_BYTES + 1, 0x20));
      big.on('error', () => {});
    } catch {
      threw = true;
    }
    await pair.settle();
    const errors = [...pair.protocolErrors];
    pair.dispose();
    assert.ok(threw, 'open() throws');
    assert.deepEqual(errors, [], 'the tunnel survives');
  });
});
