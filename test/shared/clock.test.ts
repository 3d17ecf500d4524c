// FakeClock: time moves only when told, due timers fire in time order, cleared timers never fire.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, isoTime } from '../../shared/clock.ts';

describe('FakeClock', () => {
  it('starts at a fixed time, or the one given, and stands still until advanced', () => {
    assert.equal(isoTime(new FakeClock().now()), '2026-11-23T09:00:00.000Z');
    const clock = new FakeClock(1000);
    assert.equal(clock.now(), 1000);
    assert.equal(clock.now(), 1000);
    clock.advance(250);
    assert.equal(clock.now(), 1250);
  });

  it('fires due timers in time order, each seeing its own due time as now', () => {
    const clock = new FakeClock(0);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(['c', clock.now()]), 300);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 100);
    clock.setTimeout(() => fired.push(['b', clock.now()]), 200);
    clock.advance(250);
    assert.deepEqual(fired, [['a', 100], ['b', 200]]);
    assert.equal(clock.now(), 250);
    clock.advance(50);
    assert.deepEqual(fired, [['a', 100], ['b', 200], ['c', 300]]);
  });

  it('fires timers due at the same time in the order they were set', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    for (const name of ['first', 'second', 'third']) clock.setTimeout(() => fired.push(name), 100);
    clock.advance(100);
    assert.deepEqual(fired, ['first', 'second', 'third']);
  });

  it('does not fire a timer before its time', () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.setTimeout(() => (fired = true), 100);
    clock.advance(99);
    assert.equal(fired, false);
    clock.advance(1);
    assert.equal(fired, true);
  });

  it('treats a negative delay as zero', () => {
    const clock = new FakeClock(0);
    let at = -1;
    clock.setTimeout(() => (at = clock.now()), -50);
    clock.advance(0);
    assert.equal(at, 0);
  });

  it('never fires a cleared timer, and clearing twice is harmless', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const keep = clock.setTimeout(() => fired.push('keep'), 100);
    const drop = clock.setTimeout(() => fired.push('drop'), 100);
    clock.clearTimeout(drop);
    clock.clearTimeout(drop);
    clock.advance(1000);
    assert.deepEqual(fired, ['keep']);
    clock.clearTimeout(keep); // after it fired: nothing happens
  });

  it('fires timers that timers set, within the same advance, when they fall due', () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const tick = () => {
      ticks.push(clock.now());
      clock.setTimeout(tick, 100);
    };
    clock.setTimeout(tick, 100);
    clock.advance(450);
    assert.deepEqual(ticks, [100, 200, 300, 400]);
    assert.equal(clock.now(), 450);
  });

  it('orders a timer set by a timer correctly against timers already waiting', () => {
    const clock = new FakeClock(0);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => {
      fired.push(['outer', clock.now()]);
      clock.setTimeout(() => fired.push(['inner', clock.now()]), 50); // due at 150
    }, 100);
    clock.setTimeout(() => fired.push(['late', clock.now()]), 200);
    clock.advance(300);
    assert.deepEqual(fired, [['outer', 100], ['inner', 150], ['late', 200]]);
  });

  it('lets a timer cancel another timer that is due in the same advance', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const second = clock.setTimeout(() => fired.push('second'), 200);
    clock.setTimeout(() => {
      fired.push('first');
      clock.clearTimeout(second);
    }, 100);
    clock.advance(500);
    assert.deepEqual(fired, ['first']);
  });

  it('a zero-delay timer set during advance fires in that advance', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => clock.setTimeout(() => fired.push(clock.now()), 0), 100);
    clock.advance(100);
    assert.deepEqual(fired, [100]);
  });
});

describe('isoTime', () => {
  it('formats milliseconds as UTC ISO 8601 with milliseconds', () => {
    assert.equal(isoTime(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), '2026-01-02T03:04:05.006Z');
  });
});
