// The load window: time-weighted in-flight counts, arrivals, backend samples, per whole second on a fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadWindow, maxLoadWindowS } from '../../../hub/control/load-window.ts';
import { FakeClock } from '../../../shared/clock.ts';

function setup(): { clock: FakeClock; window: LoadWindow } {
  const clock = new FakeClock();
  return { clock, window: new LoadWindow(clock) };
}

describe('LoadWindow', () => {
  it('weights in-flight requests by the time they were in flight within each second', () => {
    const { clock, window } = setup();
    window.requestStarted(); // second 0: one request for its first half
    clock.advance(500);
    window.requestEnded();
    clock.advance(500);
    window.requestStarted(); // second 1: two requests throughout
    window.requestStarted();
    clock.advance(1000);
    assert.deepEqual(window.averages(2), { concurrency: 1.25, rps: 1.5, backend: null });
  });

  it('splits a request across the partial seconds at its ends', () => {
    const { clock, window } = setup();
    clock.advance(250);
    window.requestStarted();
    clock.advance(2500);
    window.requestEnded(); // in flight 0.75 s + 1 s + 0.75 s
    clock.advance(250);
    assert.equal(window.averages(3).concurrency, 2.5 / 3);
  });

  it('carries the in-flight count through seconds with no events', () => {
    const { clock, window } = setup();
    for (let i = 0; i < 3; i++) window.requestStarted();
    clock.advance(10_000);
    assert.equal(window.averages(10).concurrency, 3);
    assert.equal(window.averages(60).concurrency, 0.5); // 10 s of 3 over 60 s
    assert.equal(window.averages(10).rps, 0.3);
    assert.equal(window.inFlight, 3);
  });

  it('keeps counting a stream open far longer than the window', () => {
    const { clock, window } = setup();
    window.requestStarted();
    window.requestStarted();
    clock.advance(1_000_000);
    assert.deepEqual(window.averages(60), { concurrency: 2, rps: 0, backend: null });
    clock.advance(3_000);
    window.requestEnded();
    clock.advance(3_000);
    assert.equal(window.averages(6).concurrency, 1.5); // 3 s of 2, then 3 s of 1
  });

  it('counts arrivals only in whole seconds: the current second waits until it is over', () => {
    const { clock, window } = setup();
    for (let second = 0; second < 6; second++) {
      window.requestStarted();
      window.requestEnded();
      window.requestStarted();
      window.requestEnded();
      clock.advance(1000);
    }
    window.requestStarted(); // in the current, unfinished second
    window.requestEnded();
    assert.equal(window.averages(6).rps, 2);
    assert.equal(window.averages(3).rps, 2);
    assert.equal(window.averages(6).concurrency, 0);
    clock.advance(1000);
    assert.equal(window.averages(6).rps, 11 / 6);
  });

  it('averages backend samples per second, then over the seconds that had any', () => {
    const { clock, window } = setup();
    assert.equal(window.averages(3).backend, null);
    window.sampleBackend(2);
    window.sampleBackend(4); // second 0 averages 3
    clock.advance(2000);
    window.sampleBackend(6); // second 2; second 1 has none and does not count
    clock.advance(1000);
    assert.equal(window.averages(3).backend, 4.5);
    assert.equal(window.averages(1).backend, 6);
    clock.advance(3000);
    assert.equal(window.averages(3).backend, null);
  });

  it('forgets seconds outside the window and reuses their slots without leftovers', () => {
    const { clock, window } = setup();
    for (let i = 0; i < 5; i++) {
      window.requestStarted();
      window.requestEnded();
    }
    window.sampleBackend(9);
    clock.advance(1000);
    assert.equal(window.averages(maxLoadWindowS).rps, 5 / maxLoadWindowS);
    clock.advance(maxLoadWindowS * 1000); // second 0 has left the longest window
    assert.deepEqual(window.averages(maxLoadWindowS), { concurrency: 0, rps: 0, backend: null });
    window.requestStarted(); // second 71 lands in the slot second 0 used
    window.requestEnded();
    clock.advance(1000);
    assert.deepEqual(window.averages(1), { concurrency: 0, rps: 1, backend: null });
  });

  it('tracks the last activity: arrivals, ends and activity(), which adds no load', () => {
    const { clock, window } = setup();
    const t0 = clock.now();
    assert.equal(window.lastActivityMs, null);
    window.requestStarted();
    assert.equal(window.lastActivityMs, t0);
    clock.advance(4000);
    window.requestEnded();
    assert.equal(window.lastActivityMs, t0 + 4000);
    clock.advance(3000);
    window.activity();
    assert.equal(window.lastActivityMs, t0 + 7000);
    assert.equal(window.inFlight, 0);
    clock.advance(1000);
    assert.deepEqual(window.averages(1), { concurrency: 0, rps: 0, backend: null });
  });

  it('never counts below zero in flight: an end without a start is ignored', () => {
    const { clock, window } = setup();
    window.requestEnded();
    assert.equal(window.inFlight, 0);
    assert.equal(window.lastActivityMs, null);
    window.requestStarted();
    window.requestEnded();
    window.requestEnded();
    assert.equal(window.inFlight, 0);
    window.requestStarted();
    assert.equal(window.inFlight, 1);
    clock.advance(1000);
    assert.equal(window.averages(1).concurrency, 1);
  });

  it('refuses a window it cannot answer', () => {
    const { window } = setup();
    assert.throws(() => window.averages(0), RangeError);
    assert.throws(() => window.averages(maxLoadWindowS + 1), /1 to 70 whole seconds, got 71/);
    assert.throws(() => window.averages(1.5), RangeError);
  });
});
