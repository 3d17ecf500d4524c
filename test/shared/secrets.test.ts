// Ids and secrets: prefixes, lengths, alphabet, entropy, lookup prefixes, well-formedness and hash comparison.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describeSecret,
  hashSecret,
  hashesEqual,
  isWellFormedSecret,
  newId,
  newSecret,
  randomBase62,
  secretKindOf,
  secretPrefix,
  type IdKind,
  type SecretKind,
} from '../../shared/secrets.ts';

const BASE62 = /^[A-Za-z0-9]+$/;
const secretKinds: SecretKind[] = ['sdk', 'join', 'agent', 'live'];
const idKinds: IdKind[] = ['wrk', 'rep', 'prj', 'tok', 'jtk', 'key', 'job', 'evt'];

describe('randomBase62', () => {
  it('gives exactly the requested number of base62 characters', () => {
    for (const n of [1, 8, 16, 40, 100]) {
      const s = randomBase62(n);
      assert.equal(s.length, n);
      assert.match(s, BASE62);
    }
  });

  it('uses the whole alphabet, roughly evenly (no modulo bias towards the first letters)', () => {
    const counts = new Map<string, number>();
    const sample = randomBase62(62_000);
    for (const c of sample) counts.set(c, (counts.get(c) ?? 0) + 1);
    assert.equal(counts.size, 62);
    // Expected 1000 each; a biased generator (byte % 62 without rejection) gives the first 8 letters ~25% more.
    for (const [c, n] of counts) assert.ok(n > 800 && n < 1200, `character ${c} appeared ${n} times out of 62000`);
  });
});

describe('newId', () => {
  it('prefixes every id with its kind and a 16-character base62 body', () => {
    for (const kind of idKinds) {
      const id = newId(kind);
      assert.match(id, new RegExp(`^${kind}_[A-Za-z0-9]{16}$`));
    }
  });

  it('gives a worker id that the agent protocol accepts', () => {
    assert.match(newId('wrk'), /^wrk_[A-Za-z0-9]{8,64}$/);
  });
});

describe('newSecret', () => {
  it('prefixes each secret with ik_<kind>_ and carries 40 base62 characters (≥ 128 bits)', () => {
    for (const kind of secretKinds) {
      const { secret } = newSecret(kind);
      const head = `ik_${kind}_`;
      assert.ok(secret.startsWith(head), secret);
      const body = secret.slice(head.length);
      assert.equal(body.length, 40);
      assert.match(body, BASE62);
      assert.ok(body.length * Math.log2(62) >= 128);
    }
  });

  it('never repeats a secret or its lookup prefix in 10,000 draws', () => {
    const secrets = new Set<string>();
    const prefixes = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const s = newSecret('sdk');
      secrets.add(s.secret);
      prefixes.add(s.prefix);
    }
    assert.equal(secrets.size, 10_000);
    // 8 base62 characters (~47 bits): a collision in 10k draws would point at a broken generator.
    assert.equal(prefixes.size, 10_000);
  });

  it('returns the public prefix and the SHA-256 hash, never anything else derived from the secret', () => {
    const s = newSecret('live');
    assert.equal(s.prefix, s.secret.slice(0, 'ik_live_'.length + 8));
    assert.equal(s.hash, hashSecret(s.secret));
    assert.match(s.hash, /^[0-9a-f]{64}$/);
    assert.ok(!s.hash.includes(s.secret));
  });

  it('the same secret described again gives the same prefix and hash (lookups are stable)', () => {
    const s = newSecret('join');
    assert.deepEqual(describeSecret(s.secret), s);
  });
});

describe('secretPrefix and secretKindOf', () => {
  it('keeps the kind and the first 8 characters of the body', () => {
    assert.equal(secretPrefix('ik_sdk_ABCDEFGHijklmnop'), 'ik_sdk_ABCDEFGH');
    assert.equal(secretPrefix('ik_agent_0123456789abc'), 'ik_agent_01234567');
    assert.equal(secretPrefix('ik_join_short'), 'ik_join_short');
  });

  it('takes only 8 characters of something that is not a secret of a known kind', () => {
    assert.equal(secretPrefix('Bearer something-long'), 'Bearer s');
    assert.equal(secretKindOf('Bearer something-long'), null);
  });

  it('recognises each kind, and only at the start', () => {
    for (const kind of secretKinds) assert.equal(secretKindOf(newSecret(kind).secret), kind);
    assert.equal(secretKindOf('xik_sdk_abc'), null);
    assert.equal(secretKindOf('ik_admin_abc'), null);
  });
});

describe('isWellFormedSecret', () => {
  const body32 = 'A'.repeat(16) + '0'.repeat(16);

  it('accepts the right prefix followed by at least 32 letters or digits', () => {
    assert.equal(isWellFormedSecret(`ik_sdk_${body32}`, 'sdk'), true);
    assert.equal(isWellFormedSecret(newSecret('join').secret, 'join'), true);
  });

  it('refuses a body shorter than 32 characters', () => {
    assert.equal(isWellFormedSecret(`ik_sdk_${body32.slice(1)}`, 'sdk'), false);
    assert.equal(isWellFormedSecret('ik_sdk_', 'sdk'), false);
  });

  it('refuses a secret of another kind', () => {
    assert.equal(isWellFormedSecret(`ik_join_${body32}`, 'sdk'), false);
    assert.equal(isWellFormedSecret(`ik_sdk_${body32}`, 'join'), false);
  });

  it('refuses characters outside base62, whitespace included', () => {
    for (const bad of [`${body32}-`, `${body32}_x`, `${body32} `, ` ${body32}`, `${body32}\n`, `${body32}é`]) {
      assert.equal(isWellFormedSecret(`ik_sdk_${bad}`, 'sdk'), false, JSON.stringify(bad));
    }
  });

  it('honours a custom minimum length', () => {
    assert.equal(isWellFormedSecret('ik_agent_abc', 'agent', 3), true);
    assert.equal(isWellFormedSecret('ik_agent_ab', 'agent', 3), false);
  });
});

describe('hashSecret and hashesEqual', () => {
  it('hashes to the SHA-256 hex digest', () => {
    // sha256("abc"), a published test vector
    assert.equal(hashSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('matches only the same hash', () => {
    const a = newSecret('sdk');
    const b = newSecret('sdk');
    assert.equal(hashesEqual(a.hash, hashSecret(a.secret)), true);
    assert.equal(hashesEqual(a.hash, b.hash), false);
  });

  it('says no (instead of throwing) for hashes of different lengths or a non-hex string', () => {
    const { hash } = newSecret('sdk');
    assert.equal(hashesEqual(hash, hash.slice(0, 62)), false);
    assert.equal(hashesEqual(hash, ''), false);
    assert.equal(hashesEqual(hash, 'not-hex'), false);
  });
});
