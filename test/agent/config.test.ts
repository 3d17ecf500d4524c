// Agent configuration: the hub URL is required, flags override the environment, and the default name is usable.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { loadAgentConfig } from '../../agent/config.ts';
import { ConfigError } from '../../shared/env.ts';
import { helloSchema } from '../../shared/protocol/control.ts';

const joinToken = `ik_join_${'J'.repeat(40)}`;

describe('loadAgentConfig', () => {
  it('refuses to start without a hub URL, and says how to give one', () => {
    assert.throws(() => loadAgentConfig({}), (err: Error) => {
      assert.match(err.message, /hub URL is missing/);
      assert.match(err.message, /--hub/);
      assert.match(err.message, /IK_HUB_URL/);
      return true;
    });
    assert.throws(() => loadAgentConfig({ IK_HUB_URL: '' }), /hub URL is missing/);
  });

  it('a missing hub URL is a ConfigError like every other configuration problem', () => {
    assert.throws(() => loadAgentConfig({}), ConfigError);
  });

  it('reads the environment, with defaults for the rest', () => {
    const c = loadAgentConfig({ IK_HUB_URL: 'http://hub.example:8080/', IK_TOKEN: joinToken });
    assert.equal(c.hubUrl, 'http://hub.example:8080', 'the trailing slash is dropped');
    assert.equal(c.token, joinToken);
    assert.equal(c.dataDir, './.ik');
    assert.equal(c.nvidiaSmi, 'nvidia-smi');
    assert.equal(c.runtime, undefined);
    assert.equal(c.logLevel, 'info');
  });

  it('lets flags override the environment', () => {
    const other = `ik_join_${'K'.repeat(40)}`;
    const c = loadAgentConfig(
      { IK_HUB_URL: 'http://env-hub:8080', IK_TOKEN: joinToken, IK_AGENT_NAME: 'env-name', IK_DATA_DIR: '/env', IK_LOG_LEVEL: 'warn' },
      { hub: 'https://flag-hub', token: other, name: 'flag-name', dataDir: '/flag', logLevel: 'debug' },
    );
    assert.equal(c.hubUrl, 'https://flag-hub');
    assert.equal(c.token, other);
    assert.equal(c.name, 'flag-name');
    assert.equal(c.dataDir, '/flag');
    assert.equal(c.logLevel, 'debug');
  });

  it('takes the hub URL from a flag alone', () => {
    assert.equal(loadAgentConfig({}, { hub: 'http://127.0.0.1:8080' }).hubUrl, 'http://127.0.0.1:8080');
  });

  it('defaults the name to the hostname, made into a name the hub accepts', () => {
    const c = loadAgentConfig({ IK_HUB_URL: 'http://hub:8080' });
    assert.equal(c.name, hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63) || 'worker');
    assert.match(c.name, /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
    // The hub checks the name in `hello`: the default must pass that check.
    const name = helloSchema.shape.name.safeParse(c.name);
    assert.equal(name.success, true, `default name ${JSON.stringify(c.name)} refused by the protocol`);
  });

  it('refuses a token that is not a join token or worker credential, naming IK_TOKEN', () => {
    for (const token of [`ik_sdk_${'a'.repeat(40)}`, `ik_live_${'a'.repeat(40)}`, 'hunter2', `ik_join_${'a'.repeat(10)}-x`]) {
      assert.throws(() => loadAgentConfig({ IK_HUB_URL: 'http://hub:8080', IK_TOKEN: token }), (err: Error) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /IK_TOKEN/);
        assert.match(err.message, /ik_join_/);
        return true;
      });
    }
  });

  it('accepts a stored worker credential as the token', () => {
    const credential = `ik_agent_${'c'.repeat(40)}`;
    assert.equal(loadAgentConfig({ IK_HUB_URL: 'http://hub:8080', IK_TOKEN: credential }).token, credential);
  });

  it('refuses a hub URL that is not http(s) or ws(s)', () => {
    assert.throws(() => loadAgentConfig({ IK_HUB_URL: 'hub:8080' }), /IK_HUB_URL/);
    assert.throws(() => loadAgentConfig({ IK_HUB_URL: 'ftp://hub' }), /IK_HUB_URL/);
    assert.equal(loadAgentConfig({ IK_HUB_URL: 'wss://hub.example' }).hubUrl, 'wss://hub.example');
  });

  it('refuses a name the hub would refuse', () => {
    for (const name of ['-dash', 'has space', 'a'.repeat(64), 'ünïcode']) {
      assert.throws(() => loadAgentConfig({ IK_HUB_URL: 'http://hub:8080' }, { name }), /IK_AGENT_NAME/, name);
    }
  });

  it('refuses an unknown runtime and a bad log level', () => {
    assert.throws(() => loadAgentConfig({ IK_HUB_URL: 'http://hub:8080', IK_RUNTIME: 'podman' }), /IK_RUNTIME/);
    assert.throws(() => loadAgentConfig({ IK_HUB_URL: 'http://hub:8080', IK_LOG_LEVEL: 'loud' }), /IK_LOG_LEVEL/);
  });

  it('is frozen', () => {
    const c = loadAgentConfig({ IK_HUB_URL: 'http://hub:8080' });
    assert.throws(() => {
      (c as { hubUrl: string }).hubUrl = 'http://evil';
    }, TypeError);
  });
});
