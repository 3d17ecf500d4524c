// The agent's stored worker credential: written 0600, read back only for the same hub, never fatal when damaged.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { credentialPath, loadCredential, saveCredential, type StoredCredential } from '../../agent/credentials.ts';

const root = mkdtempSync(join(tmpdir(), 'ik-cred-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `d${++n}`);

const stored: StoredCredential = {
  hub_url: 'http://hub.example:8080',
  worker_id: 'wrk_AbCdEfGh12345678',
  credential: `ik_agent_${'Z'.repeat(40)}`,
};

describe('saveCredential', () => {
  it('writes JSON readable by the owner only, creating the data dir', () => {
    const dir = freshDir();
    saveCredential(dir, stored);
    const file = credentialPath(dir);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), stored);
  });

  it('replaces an earlier credential and keeps the mode', () => {
    const dir = freshDir();
    saveCredential(dir, stored);
    const next = { ...stored, credential: `ik_agent_${'Y'.repeat(40)}` };
    saveCredential(dir, next);
    assert.equal(statSync(credentialPath(dir)).mode & 0o777, 0o600);
    assert.deepEqual(loadCredential(dir, stored.hub_url), { credential: next });
  });
});

describe('loadCredential', () => {
  it('returns the credential saved for the same hub', () => {
    const dir = freshDir();
    saveCredential(dir, stored);
    assert.deepEqual(loadCredential(dir, stored.hub_url), { credential: stored });
  });

  it('returns nothing and no problem when there is no file', () => {
    assert.deepEqual(loadCredential(freshDir(), stored.hub_url), {});
  });

  it('ignores a credential of another hub, and says so', () => {
    const dir = freshDir();
    saveCredential(dir, stored);
    const result = loadCredential(dir, 'http://other-hub:8080');
    assert.equal(result.credential, undefined);
    assert.match(result.problem ?? '', /http:\/\/hub\.example:8080/);
    assert.match(result.problem ?? '', /http:\/\/other-hub:8080/);
    // the secret never appears in a message that ends up in the log
    assert.ok(!(result.problem ?? '').includes(stored.credential));
  });

  it('reports a file that is not JSON instead of throwing', () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(credentialPath(dir), '{"hub_url": "http://hub.exa');
    const result = loadCredential(dir, stored.hub_url);
    assert.equal(result.credential, undefined);
    assert.match(result.problem ?? '', /not valid JSON/);
    assert.match(result.problem ?? '', /agent-credential\.json/);
  });

  it('reports JSON that is not a credential instead of throwing', () => {
    for (const content of [{}, { ...stored, credential: 'ik_join_abc' }, { ...stored, worker_id: 'w1' }, [stored], null]) {
      const dir = freshDir();
      mkdirSync(dir, { recursive: true });
      writeFileSync(credentialPath(dir), JSON.stringify(content));
      const result = loadCredential(dir, stored.hub_url);
      assert.equal(result.credential, undefined, JSON.stringify(content));
      assert.match(result.problem ?? '', /not a credential file/);
    }
  });
});
