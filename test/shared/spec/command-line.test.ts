// Launch-command words: shell-like quoting without a shell, refusal of shell features, and flag reading.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandLineError, parseCommandFlags, scanCommandLine, tokenizeCommand } from '../../../shared/spec/command-line.ts';

describe('tokenizeCommand', () => {
  it('splits on spaces and tabs, whatever their number', () => {
    assert.deepEqual(tokenizeCommand('  vllm   serve\tm  '), ['vllm', 'serve', 'm']);
    assert.deepEqual(tokenizeCommand(''), []);
  });

  it('joins quoted parts the way sh does', () => {
    assert.deepEqual(tokenizeCommand(`vllm serve m --chat-template 'a b' --x="c d"e ''`), ['vllm', 'serve', 'm', '--chat-template', 'a b', '--x=c de', '']);
    assert.deepEqual(tokenizeCommand(`--json '{"a": [1, 2]}'`), ['--json', '{"a": [1, 2]}']);
  });

  it('applies backslashes outside quotes and only before \\ " $ ` inside double quotes', () => {
    assert.deepEqual(tokenizeCommand('a\\ b c\\"d'), ['a b', 'c"d']);
    assert.deepEqual(tokenizeCommand('"x\\"y\\n\\\\"'), ['x"y\\n\\']);
    assert.deepEqual(tokenizeCommand("'no \\ escapes'"), ['no \\ escapes']);
    assert.deepEqual(tokenizeCommand('vllm serve m \\\n --enforce-eager'), ['vllm', 'serve', 'm', '--enforce-eager']);
  });

  it('keeps quoted operator characters literal', () => {
    assert.deepEqual(tokenizeCommand(`--stop '|' --sep ";" --env '$HOME'`), ['--stop', '|', '--sep', ';', '--env', '$HOME']);
  });

  it('throws a CommandLineError for shell features and broken quoting', () => {
    for (const cmd of ['a | b', 'a; b', 'a && b', 'a || b', 'a & b', 'a > f', 'a < f', 'a $(b)', 'a `b`', 'a "$(b)"', 'a $X', 'a ${X}', "a 'b", 'a "b', 'a \\', 'a\nb']) {
      assert.throws(() => tokenizeCommand(cmd), CommandLineError, cmd);
    }
  });

  it('lists each shell feature it meets, once', () => {
    const { problems } = scanCommandLine('a | b | c; d > e');
    assert.equal(problems.length, 3);
    assert.ok(problems.every((p) => p.startsWith('the command is not run by a shell')));
  });
});

describe('parseCommandFlags', () => {
  it('reads positionals, --flag value, --flag=value and bare flags', () => {
    const { positionals, flags } = parseCommandFlags(
      tokenizeCommand('vllm serve m --tensor-parallel-size 2 --gpu-memory-utilization=0.9 --enforce-eager --max-model-len 8192'),
    );
    assert.deepEqual(positionals, ['vllm', 'serve', 'm']);
    assert.equal(flags.get('--tensor-parallel-size'), '2');
    assert.equal(flags.get('--gpu-memory-utilization'), '0.9');
    assert.equal(flags.get('--enforce-eager'), true);
    assert.equal(flags.get('--max-model-len'), '8192');
  });

  it('reads underscores in long names as dashes, short flags, negative values, and lets the last one win', () => {
    const { flags, positionals } = parseCommandFlags(['python3', '-m', 'sglang.launch_server', '--tensor_parallel_size', '4', '--seed', '-1', '--tp', '1', '--tp', '2', '--', '--literal']);
    assert.equal(flags.get('-m'), 'sglang.launch_server');
    assert.equal(flags.get('--tensor-parallel-size'), '4');
    assert.equal(flags.get('--seed'), '-1');
    assert.equal(flags.get('--tp'), '2');
    assert.deepEqual(positionals, ['python3', '--literal']);
  });

  it('takes a flag followed by another flag as boolean', () => {
    const { flags } = parseCommandFlags(['--omni', '--trust-remote-code']);
    assert.equal(flags.get('--omni'), true);
    assert.equal(flags.get('--trust-remote-code'), true);
  });
});
