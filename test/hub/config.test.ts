// Hub configuration: defaults, environment, flags over environment, frozen result, and one clear error per bad value.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadHubConfig } from '../../hub/config.ts';
import { ConfigError } from '../../shared/env.ts';
import { newSecret } from '../../shared/secrets.ts';

/** Asserts that loading fails with a ConfigError whose message names `variable`; returns the message. */
function configError(env: Record<string, string>, variable: string, flags = {}): string {
  let caught: unknown;
  try {
    loadHubConfig(env, flags);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}, got ${String(caught)}`);
  assert.match(caught.message, new RegExp(variable));
  return caught.message;
}

describe('loadHubConfig defaults', () => {
  it('listens on 0.0.0.0:8080 with state in ./.ik and the documented timings', () => {
    const c = loadHubConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.dataDir, './.ik');
    assert.equal(c.publicUrl, undefined);
    assert.equal(c.adminToken, undefined);
    assert.equal(c.joinToken, undefined);
    assert.equal(c.heartbeatIntervalMs, 5000);
    assert.equal(c.workerGraceS, 60);
    assert.equal(c.restartBackoffBaseMs, 10_000);
    assert.equal(c.metricsPublic, false);
    assert.equal(c.tls, undefined);
    assert.equal(c.logLevel, 'info');
  });

  it('ignores variables it does not know', () => {
    assert.equal(loadHubConfig({ PATH: '/usr/bin', IK_SOMETHING_ELSE: 'x' }).port, 8080);
  });
});

describe('loadHubConfig from the environment', () => {
  it('reads every documented variable', () => {
    const admin = newSecret('sdk').secret;
    const join = newSecret('join').secret;
    const c = loadHubConfig({
      IK_PORT: '9090',
      IK_HOST: '127.0.0.1',
      IK_DATA_DIR: '/var/lib/ik',
      IK_PUBLIC_URL: 'https://hub.example.com/',
      IK_ADMIN_TOKEN: admin,
      IK_JOIN_TOKEN: join,
      IK_HEARTBEAT_INTERVAL_MS: '1000',
      IK_WORKER_GRACE_S: '5',
      IK_RESTART_BACKOFF_BASE_MS: '250',
      IK_METRICS_PUBLIC: 'true',
      IK_TLS_CERT: '/etc/ik/cert.pem',
      IK_TLS_KEY: '/etc/ik/key.pem',
      IK_LOG_LEVEL: 'debug',
    });
    assert.equal(c.port, 9090);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.dataDir, '/var/lib/ik');
    assert.equal(c.publicUrl, 'https://hub.example.com', 'a trailing slash is dropped, so paths can be appended');
    assert.equal(c.adminToken, admin);
    assert.equal(c.joinToken, join);
    assert.equal(c.heartbeatIntervalMs, 1000);
    assert.equal(c.workerGraceS, 5);
    assert.equal(c.restartBackoffBaseMs, 250);
    assert.equal(c.metricsPublic, true);
    assert.deepEqual(c.tls, { cert: '/etc/ik/cert.pem', key: '/etc/ik/key.pem' });
    assert.equal(c.logLevel, 'debug');
  });

  it('accepts the usual spellings of booleans', () => {
    for (const v of ['1', 'true', 'TRUE', 'yes', 'on']) assert.equal(loadHubConfig({ IK_METRICS_PUBLIC: v }).metricsPublic, true, v);
    for (const v of ['0', 'false', 'no', 'off']) assert.equal(loadHubConfig({ IK_METRICS_PUBLIC: v }).metricsPublic, false, v);
  });

  it('treats empty strings as unset', () => {
    const c = loadHubConfig({
      IK_PORT: '',
      IK_HOST: '',
      IK_DATA_DIR: '',
      IK_PUBLIC_URL: '',
      IK_ADMIN_TOKEN: '',
      IK_JOIN_TOKEN: '',
      IK_HEARTBEAT_INTERVAL_MS: '',
      IK_WORKER_GRACE_S: '',
      IK_RESTART_BACKOFF_BASE_MS: '',
      IK_METRICS_PUBLIC: '',
      IK_TLS_CERT: '',
      IK_TLS_KEY: '',
      IK_LOG_LEVEL: '',
    });
    assert.deepEqual({ ...c }, { ...loadHubConfig({}) });
  });

  it('accepts port 0 (any free port, as tests use)', () => {
    assert.equal(loadHubConfig({ IK_PORT: '0' }).port, 0);
  });
});

describe('loadHubConfig flags', () => {
  it('override the environment', () => {
    const c = loadHubConfig(
      { IK_PORT: '9090', IK_HOST: '10.0.0.1', IK_DATA_DIR: '/env', IK_PUBLIC_URL: 'http://env:1', IK_LOG_LEVEL: 'warn' },
      { port: 7070, host: '127.0.0.1', dataDir: '/flag', publicUrl: 'http://flag:2', logLevel: 'error' },
    );
    assert.equal(c.port, 7070);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.dataDir, '/flag');
    assert.equal(c.publicUrl, 'http://flag:2');
    assert.equal(c.logLevel, 'error');
  });

  it('leave the environment alone where a flag is not given', () => {
    const c = loadHubConfig({ IK_PORT: '9090', IK_HOST: '10.0.0.1' }, { host: '127.0.0.1' });
    assert.equal(c.port, 9090);
    assert.equal(c.host, '127.0.0.1');
  });

  it('get the same checks as the environment', () => {
    configError({}, 'IK_PORT', { port: 70_000 });
    configError({}, 'IK_LOG_LEVEL', { logLevel: 'loud' });
    configError({}, 'IK_PUBLIC_URL', { publicUrl: 'not a url' });
  });

  it('do not change the environment object passed in', () => {
    const env = { IK_PORT: '9090' };
    loadHubConfig(env, { port: 1234 });
    assert.deepEqual(env, { IK_PORT: '9090' });
  });
});

describe('loadHubConfig result is frozen', () => {
  it('cannot be changed after loading (strict mode throws)', () => {
    const c = loadHubConfig({ IK_TLS_CERT: '/c.pem', IK_TLS_KEY: '/k.pem' });
    assert.ok(Object.isFrozen(c));
    assert.throws(() => {
      (c as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (c.tls as { cert: string }).cert = '/other.pem';
    }, TypeError);
    assert.equal(c.port, 8080);
    assert.equal(c.tls?.cert, '/c.pem');
  });
});

describe('loadHubConfig errors name the variable', () => {
  it('a port out of range', () => {
    assert.match(configError({ IK_PORT: '70000' }, 'IK_PORT'), /70000/);
    configError({ IK_PORT: '-1' }, 'IK_PORT');
  });

  it('a value that is not a number', () => {
    assert.match(configError({ IK_PORT: 'eighty' }, 'IK_PORT'), /eighty/);
    configError({ IK_PORT: '80.5' }, 'IK_PORT');
    configError({ IK_HEARTBEAT_INTERVAL_MS: '5s' }, 'IK_HEARTBEAT_INTERVAL_MS');
    configError({ IK_WORKER_GRACE_S: 'one minute' }, 'IK_WORKER_GRACE_S');
    configError({ IK_RESTART_BACKOFF_BASE_MS: '0' }, 'IK_RESTART_BACKOFF_BASE_MS');
  });

  it('a heartbeat interval too small to be sane', () => {
    configError({ IK_HEARTBEAT_INTERVAL_MS: '1' }, 'IK_HEARTBEAT_INTERVAL_MS');
  });

  it('an admin token with the wrong prefix', () => {
    const message = configError({ IK_ADMIN_TOKEN: newSecret('join').secret }, 'IK_ADMIN_TOKEN');
    assert.match(message, /ik_sdk_/);
  });

  it('an admin token that is too short', () => {
    configError({ IK_ADMIN_TOKEN: `ik_sdk_${'a'.repeat(31)}` }, 'IK_ADMIN_TOKEN');
    assert.equal(loadHubConfig({ IK_ADMIN_TOKEN: `ik_sdk_${'a'.repeat(32)}` }).adminToken, `ik_sdk_${'a'.repeat(32)}`);
  });

  it('an admin token with characters outside letters and digits', () => {
    configError({ IK_ADMIN_TOKEN: `ik_sdk_${'a'.repeat(31)}-` }, 'IK_ADMIN_TOKEN');
  });

  it('a join token with the wrong prefix', () => {
    configError({ IK_JOIN_TOKEN: newSecret('sdk').secret }, 'IK_JOIN_TOKEN');
  });

  it('does not echo the bad admin token back in the message (it may be a real secret)', () => {
    const secret = newSecret('join').secret;
    const message = configError({ IK_ADMIN_TOKEN: secret }, 'IK_ADMIN_TOKEN');
    assert.ok(!message.includes(secret));
  });

  it('a public URL that is not an http(s) URL', () => {
    configError({ IK_PUBLIC_URL: 'hub.example.com' }, 'IK_PUBLIC_URL');
    configError({ IK_PUBLIC_URL: 'ftp://hub.example.com' }, 'IK_PUBLIC_URL');
  });

  it('an unknown log level', () => {
    assert.match(configError({ IK_LOG_LEVEL: 'verbose' }, 'IK_LOG_LEVEL'), /IK_LOG_LEVEL/);
  });

  it('a boolean that is not one', () => {
    configError({ IK_METRICS_PUBLIC: 'maybe' }, 'IK_METRICS_PUBLIC');
  });

  it('lists every bad variable at once', () => {
    const message = configError({ IK_PORT: 'x', IK_LOG_LEVEL: 'verbose' }, 'IK_PORT');
    assert.match(message, /IK_LOG_LEVEL/);
  });

  it('IK_TLS_CERT without IK_TLS_KEY names both', () => {
    assert.throws(() => loadHubConfig({ IK_TLS_CERT: '/c.pem' }), /IK_TLS_CERT.*IK_TLS_KEY/);
    assert.throws(() => loadHubConfig({ IK_TLS_KEY: '/k.pem' }), /IK_TLS_CERT.*IK_TLS_KEY/);
  });

  it('IK_TLS_CERT without IK_TLS_KEY is a ConfigError like every other bad value', () => {
    configError({ IK_TLS_CERT: '/c.pem' }, 'IK_TLS_KEY');
  });
});
