// Reconnect and restart schedules: the agent's 1 s → 60 s backoff with jitter, and the restart doubling.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, doublingDelay } from '../../shared/backoff.ts';

/** A small seeded generator (mulberry32), so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const reconnect = { baseMs: 1000, capMs: 60_000 };

describe('backoffDelay (agent reconnects: 1 s → 60 s with jitter)', () => {
  it('waits between half and all of base·2ⁿ, capped at 60 s', () => {
    const random = seeded(42);
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(60_000, 1000 * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(attempt, { ...reconnect, random });
        assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt}: ${d} ms outside [${ceiling / 2}, ${ceiling}]`);
      }
    }
  });

  it('starts around 1 s and reaches the 60 s cap after a few attempts', () => {
    assert.equal(backoffDelay(0, { ...reconnect, random: () => 0 }), 500);
    assert.equal(backoffDelay(0, { ...reconnect, random: () => 1 }), 1000);
    assert.equal(backoffDelay(5, { ...reconnect, random: () => 1 }), 32_000);
    assert.equal(backoffDelay(6, { ...reconnect, random: () => 1 }), 60_000);
    assert.equal(backoffDelay(6, { ...reconnect, random: () => 0 }), 30_000);
  });

  it('never passes the cap or goes non-finite for very large attempt numbers', () => {
    const random = seeded(7);
    for (const attempt of [30, 31, 100, 1_000, 1e6, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(attempt, { ...reconnect, random });
      assert.ok(Number.isFinite(d), `attempt ${attempt}: ${d}`);
      assert.ok(d >= 30_000 && d <= 60_000, `attempt ${attempt}: ${d}`);
    }
  });

  it('spreads agents out: different random draws give different delays at the same attempt', () => {
    const random = seeded(1);
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4, { ...reconnect, random })));
    assert.ok(delays.size > 40, `only ${delays.size} distinct delays out of 50`);
  });

  it('is reproducible with the same seed', () => {
    const a = seeded(99);
    const b = seeded(99);
    const run = (r: () => number) => Array.from({ length: 10 }, (_, i) => backoffDelay(i, { ...reconnect, random: r }));
    assert.deepEqual(run(a), run(b));
  });

  it('returns whole milliseconds', () => {
    const random = seeded(3);
    for (let i = 0; i < 20; i++) assert.ok(Number.isInteger(backoffDelay(i % 8, { baseMs: 333, capMs: 10_000, random })));
  });
});

describe('doublingDelay (replica restarts: 10 s × 2ⁿ, cap 5 min)', () => {
  it('doubles from the base without jitter and stops at the cap', () => {
    const schedule = Array.from({ length: 8 }, (_, n) => doublingDelay(n, 10_000, 300_000));
    assert.deepEqual(schedule, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('stays at the cap for huge attempt numbers', () => {
    assert.equal(doublingDelay(1e9, 10_000, 300_000), 300_000);
    assert.equal(doublingDelay(Number.MAX_SAFE_INTEGER, 10_000, 300_000), 300_000);
  });
});
