// Bootstrap secrets: generated once and kept in 0600 files, the environment wins, revocations stick, only hashes in the db.
import { testSecretBox } from '../helpers/inventory.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN_FILE, bootstrapSecrets, JOIN_TOKEN_FILE, writeCliConfig, type BootstrapSecrets } from '../../hub/bootstrap.ts';
import { loadHubConfig } from '../../hub/config.ts';
import { openDatabase } from '../../hub/db/open.ts';
import { createStore } from '../../hub/store/index.ts';
import { FakeClock } from '../../shared/clock.ts';
import { createLogger } from '../../shared/logger.ts';
import { isWellFormedSecret, newSecret } from '../../shared/secrets.ts';

const root = mkdtempSync(join(tmpdir(), 'ik-boot-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDataDir = () => join(root, `d${++n}`);
const log = createLogger({ level: 'silent', name: 'test' });
const clock = new FakeClock();

/** One hub start against `dataDir`: opens the db, settles the secrets, closes the db, and returns what it saw. */
function start(dataDir: string, env: Record<string, string> = {}, also?: (store: ReturnType<typeof createStore>) => void) {
  const db = openDatabase(join(dataDir, 'hub.db'));
  try {
    const store = createStore(db, clock, testSecretBox());
    also?.(store);
    const secrets = bootstrapSecrets({ store, config: loadHubConfig({ ...env, IK_DATA_DIR: dataDir }), log });
    const dump = JSON.stringify([
      db.prepare('SELECT * FROM control_tokens').all(),
      db.prepare('SELECT * FROM join_tokens').all(),
      db.prepare('SELECT * FROM events').all(),
    ]);
    return {
      secrets,
      dump,
      controlTokens: store.controlTokens.list(),
      joinTokens: store.joinTokens.list(),
      adminRow: store.controlTokens.findBySecret(secrets.adminToken),
      joinRow: store.joinTokens.findBySecret(secrets.joinToken),
      projects: store.projects.list(),
    };
  } finally {
    db.close();
  }
}

const fileText = (path: string) => readFileSync(path, 'utf8').trim();
const mode = (path: string) => statSync(path).mode & 0o777;

describe('first start', () => {
  const dataDir = freshDataDir();
  let first: ReturnType<typeof start>;
  let s: BootstrapSecrets;
  before(() => {
    first = start(dataDir);
    s = first.secrets;
  });

  it('generates an admin token and a join token of the right kinds', () => {
    assert.equal(s.adminTokenGenerated, true);
    assert.equal(s.joinTokenGenerated, true);
    assert.ok(isWellFormedSecret(s.adminToken, 'sdk', 40), s.adminToken);
    assert.ok(isWellFormedSecret(s.joinToken, 'join', 40), s.joinToken);
  });

  it('writes them to admin-token and join-token, readable by the owner only', () => {
    assert.equal(s.adminTokenFile, join(dataDir, ADMIN_TOKEN_FILE));
    assert.equal(s.joinTokenFile, join(dataDir, JOIN_TOKEN_FILE));
    assert.equal(fileText(s.adminTokenFile), s.adminToken);
    assert.equal(fileText(s.joinTokenFile), s.joinToken);
    assert.equal(mode(s.adminTokenFile), 0o600);
    assert.equal(mode(s.joinTokenFile), 0o600);
  });

  it('registers them: a hub-wide admin token and a shared-pool join token', () => {
    assert.ok(first.adminRow, 'the admin token is not registered');
    assert.ok(first.joinRow, 'the join token is not registered');
    assert.equal(first.adminRow.project_id, null);
    assert.equal(first.adminRow.revoked_at, null);
    assert.equal(first.adminRow.bootstrap, 1);
    assert.equal(first.joinRow.project_id, null);
    assert.equal(first.joinRow.revoked_at, null);
    assert.equal(first.controlTokens.length, 1);
    assert.equal(first.joinTokens.length, 1);
  });

  it('never stores a clear secret in the database', () => {
    assert.ok(!first.dump.includes(s.adminToken), 'the admin token is in the database in clear');
    assert.ok(!first.dump.includes(s.joinToken), 'the join token is in the database in clear');
  });

  it('creates the default project', () => {
    assert.deepEqual(first.projects.map((p) => p.slug), ['default']);
  });
});

describe('second start', () => {
  const dataDir = freshDataDir();
  let first: ReturnType<typeof start>;
  let second: ReturnType<typeof start>;
  before(() => {
    first = start(dataDir);
    second = start(dataDir);
  });

  it('reuses the tokens from the files: same tokens, not generated, no new rows', () => {
    assert.equal(second.secrets.adminToken, first.secrets.adminToken);
    assert.equal(second.secrets.joinToken, first.secrets.joinToken);
    assert.equal(second.secrets.adminTokenGenerated, false);
    assert.equal(second.secrets.joinTokenGenerated, false);
    assert.deepEqual(second.controlTokens, first.controlTokens);
    assert.deepEqual(second.joinTokens, first.joinTokens);
    assert.equal(second.projects.length, 1);
  });

  it('keeps the files as they were, mode included', () => {
    assert.equal(fileText(second.secrets.adminTokenFile), first.secrets.adminToken);
    assert.equal(mode(second.secrets.adminTokenFile), 0o600);
  });
});

describe('IK_ADMIN_TOKEN / IK_JOIN_TOKEN given', () => {
  it('are used as given on a fresh hub, and written to the files', () => {
    const dataDir = freshDataDir();
    const admin = newSecret('sdk').secret;
    const joinToken = newSecret('join').secret;
    const r = start(dataDir, { IK_ADMIN_TOKEN: admin, IK_JOIN_TOKEN: joinToken });
    assert.equal(r.secrets.adminToken, admin);
    assert.equal(r.secrets.joinToken, joinToken);
    assert.equal(r.secrets.adminTokenGenerated, false);
    assert.equal(r.secrets.joinTokenGenerated, false);
    assert.ok(r.adminRow && r.joinRow);
    assert.equal(fileText(r.secrets.adminTokenFile), admin);
    assert.equal(mode(r.secrets.adminTokenFile), 0o600);
    assert.ok(!r.dump.includes(admin) && !r.dump.includes(joinToken));
  });

  it('replace an earlier bootstrap token, which stops working', () => {
    const dataDir = freshDataDir();
    const first = start(dataDir);
    const admin = newSecret('sdk').secret;
    const second = start(dataDir, { IK_ADMIN_TOKEN: admin });
    assert.equal(second.secrets.adminToken, admin);
    assert.equal(second.adminRow?.revoked_at, null);
    const old = second.controlTokens.find((t) => t.id === first.adminRow?.id);
    assert.ok(old, 'the old token row is gone');
    assert.notEqual(old.revoked_at, null, 'the old bootstrap admin token still works');
    assert.equal(second.controlTokens.filter((t) => t.revoked_at === null).length, 1);
    assert.equal(fileText(second.secrets.adminTokenFile), admin);
    // the join token was not touched
    assert.equal(second.secrets.joinToken, first.secrets.joinToken);
  });

  it('once the variable is unset again, the token from the file stays in force', () => {
    const dataDir = freshDataDir();
    const admin = newSecret('sdk').secret;
    start(dataDir, { IK_ADMIN_TOKEN: admin });
    const later = start(dataDir);
    assert.equal(later.secrets.adminToken, admin);
    assert.equal(later.secrets.adminTokenGenerated, false);
    assert.equal(later.controlTokens.length, 1);
  });

  it('refuses a value that another (non-bootstrap) token already has', () => {
    const dataDir = freshDataDir();
    const taken = newSecret('sdk');
    assert.throws(
      () => start(dataDir, { IK_ADMIN_TOKEN: taken.secret }, (store) => store.controlTokens.insert({ projectId: null, name: 'ci', secret: taken })),
      /IK_ADMIN_TOKEN is already in use/,
    );
  });
});

describe('a revoked bootstrap join token', () => {
  it('stays revoked on the next start when only the file names it: a new one is generated', () => {
    const dataDir = freshDataDir();
    const first = start(dataDir);
    const revokedId = first.joinRow!.id;
    const second = start(dataDir, {}, (store) => assert.equal(store.joinTokens.revoke(revokedId), true));
    assert.notEqual(second.secrets.joinToken, first.secrets.joinToken);
    assert.equal(second.secrets.joinTokenGenerated, true);
    assert.notEqual(second.joinTokens.find((t) => t.id === revokedId)?.revoked_at, null, 'the revoked token came back');
    assert.equal(second.joinRow?.revoked_at, null);
    assert.equal(fileText(second.secrets.joinTokenFile), second.secrets.joinToken);
    // and it stays that way on the start after
    const third = start(dataDir);
    assert.equal(third.secrets.joinToken, second.secrets.joinToken);
    assert.notEqual(third.joinTokens.find((t) => t.id === revokedId)?.revoked_at, null);
  });

  it('is reactivated when the environment names it', () => {
    const dataDir = freshDataDir();
    const first = start(dataDir);
    const revokedId = first.joinRow!.id;
    const second = start(dataDir, {}, (store) => store.joinTokens.revoke(revokedId));
    const third = start(dataDir, { IK_JOIN_TOKEN: first.secrets.joinToken });
    assert.equal(third.secrets.joinToken, first.secrets.joinToken);
    assert.equal(third.joinRow?.id, revokedId);
    assert.equal(third.joinRow?.revoked_at, null, 'the named token is still revoked');
    // the one generated in between gave way to it
    assert.notEqual(third.joinTokens.find((t) => t.id === second.joinRow?.id)?.revoked_at, null);
    assert.equal(third.joinTokens.filter((t) => t.revoked_at === null).length, 1);
    assert.equal(fileText(third.secrets.joinTokenFile), first.secrets.joinToken);
  });

  it('a revoked bootstrap admin token likewise stays revoked when only the file names it', () => {
    const dataDir = freshDataDir();
    const first = start(dataDir);
    const second = start(dataDir, {}, (store) => store.controlTokens.revoke(first.adminRow!.id));
    assert.notEqual(second.secrets.adminToken, first.secrets.adminToken);
    assert.equal(second.secrets.adminTokenGenerated, true);
  });
});

describe('damaged files', () => {
  it('a token file that holds something else is replaced by a new token', () => {
    const dataDir = freshDataDir();
    start(dataDir);
    writeFileSync(join(dataDir, ADMIN_TOKEN_FILE), 'not a token\n', { mode: 0o600 });
    const again = start(dataDir);
    assert.equal(again.secrets.adminTokenGenerated, true);
    assert.ok(isWellFormedSecret(again.secrets.adminToken, 'sdk'));
    assert.equal(fileText(again.secrets.adminTokenFile), again.secrets.adminToken);
    assert.equal(again.controlTokens.filter((t) => t.revoked_at === null).length, 1);
  });
});

describe('writeCliConfig', () => {
  it('writes cli.json with the hub URL and token, readable by the owner only', () => {
    const dataDir = freshDataDir();
    const token = newSecret('sdk').secret;
    const file = writeCliConfig(dataDir, 'http://127.0.0.1:8080', token);
    assert.equal(file, join(dataDir, 'cli.json'));
    assert.equal(mode(file), 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { hub_url: 'http://127.0.0.1:8080', token });
  });

  it('overwrites an earlier cli.json and keeps it private', () => {
    const dataDir = freshDataDir();
    writeCliConfig(dataDir, 'http://old:1', newSecret('sdk').secret);
    const token = newSecret('sdk').secret;
    const file = writeCliConfig(dataDir, 'http://new:2', token);
    assert.equal(mode(file), 0o600);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).hub_url, 'http://new:2');
  });
});
