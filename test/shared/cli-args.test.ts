// Command-line parsing: strict options, positional limits and whole-number flags, with errors naming the command.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { intFlag, parseCommandArgs, UsageError } from '../../shared/cli-args.ts';

const options = {
  json: { type: 'boolean' },
  project: { type: 'string' },
  label: { type: 'string', multiple: true },
} as const;

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a UsageError, nothing was thrown');
}

describe('parseCommandArgs', () => {
  it('parses known options and positionals', () => {
    const parsed = parseCommandArgs('ik workers', ['show', 'wrk_1', '--json', '--project', 'p', '--label', 'a=1', '--label', 'b=2'], options, 2);
    assert.deepEqual(parsed.positionals, ['show', 'wrk_1']);
    assert.equal(parsed.values.json, true);
    assert.equal(parsed.values.project, 'p');
    assert.deepEqual(parsed.values.label, ['a=1', 'b=2']);
  });

  it('refuses an unknown option, naming the option and the command', () => {
    const err = usageError(() => parseCommandArgs('ik join-token create', ['--projekt', 'p'], options));
    assert.match(err.message, /--projekt/);
    assert.match(err.message, /`ik join-token create`/);
    assert.match(err.message, /--help/);
    // node's own hint about positionals is noise here
    assert.doesNotMatch(err.message, /To specify a positional argument/);
  });

  it('refuses a string option without its value', () => {
    const err = usageError(() => parseCommandArgs('ik workers', ['--project'], options));
    assert.match(err.message, /--project/);
    assert.match(err.message, /`ik workers`/);
  });

  it('refuses a value for a boolean option', () => {
    usageError(() => parseCommandArgs('ik workers', ['--json=yes'], options));
  });

  it('refuses more positionals than the command takes, naming the first extra one', () => {
    const err = usageError(() => parseCommandArgs('ik workers show', ['wrk_1', 'wrk_2', 'wrk_3'], options, 1));
    assert.match(err.message, /"wrk_2"/);
    assert.match(err.message, /`ik workers show`/);
    const none = usageError(() => parseCommandArgs('ik tokens create', ['extra'], options));
    assert.match(none.message, /"extra"/);
  });

  it('accepts exactly as many positionals as allowed', () => {
    assert.deepEqual(parseCommandArgs('ik x', ['a', 'b'], options, 2).positionals, ['a', 'b']);
  });

  it('treats everything after -- as positionals', () => {
    assert.deepEqual(parseCommandArgs('ik x', ['--', '--json'], options, 1).positionals, ['--json']);
  });
});

describe('intFlag', () => {
  it('is undefined when the flag was not given', () => {
    assert.equal(intFlag('tail', undefined), undefined);
  });

  it('turns a whole number into a number', () => {
    assert.equal(intFlag('tail', '0'), 0);
    assert.equal(intFlag('tail', '100'), 100);
  });

  it('accepts the bounds themselves', () => {
    assert.equal(intFlag('port', '1', 1, 65535), 1);
    assert.equal(intFlag('port', '65535', 1, 65535), 65535);
  });

  it('refuses values outside the bounds, naming the flag and the range', () => {
    const low = usageError(() => intFlag('port', '0', 1, 65535));
    assert.match(low.message, /--port/);
    assert.match(low.message, /between 1 and 65535/);
    assert.match(low.message, /"0"/);
    usageError(() => intFlag('port', '65536', 1, 65535));
  });

  it('refuses anything that is not a whole number', () => {
    for (const v of ['', '-1', '1.5', '1e3', ' 5', '5 ', 'ten', '0x10']) {
      const err = usageError(() => intFlag('tail', v));
      assert.match(err.message, /--tail/);
    }
  });
});
