// Ids and secrets: random, prefixed by kind; secrets are stored as SHA-256 hashes and compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Uniform base62 string from the system CSPRNG (rejection sampling, so no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export type IdKind = 'wrk' | 'rep' | 'prj' | 'tok' | 'jtk' | 'key' | 'job' | 'evt' | 'wl';

export function newId(kind: IdKind): string {
  return `${kind}_${randomBase62(16)}`;
}

export type SecretKind = 'sdk' | 'join' | 'agent' | 'live';

/** Characters after `ik_<kind>_`: 40 base62 characters carry about 238 bits. */
const SECRET_BODY_LENGTH = 40;
/** How many characters of the body are public: shown in listings and used to look the record up. */
const PREFIX_BODY_LENGTH = 8;

export interface NewSecret {
  secret: string;
  prefix: string;
  hash: string;
}

export function newSecret(kind: SecretKind): NewSecret {
  return describeSecret(`ik_${kind}_${randomBase62(SECRET_BODY_LENGTH)}`);
}

export function describeSecret(secret: string): NewSecret {
  return { secret, prefix: secretPrefix(secret), hash: hashSecret(secret) };
}

/** The public part of a secret: its kind and the first characters of its body. */
export function secretPrefix(secret: string): string {
  const kind = secretKindOf(secret);
  const head = kind ? `ik_${kind}_` : '';
  return secret.slice(0, head.length + PREFIX_BODY_LENGTH);
}

export function secretKindOf(secret: string): SecretKind | null {
  const m = /^ik_(sdk|join|agent|live)_/.exec(secret);
  return m ? (m[1] as SecretKind) : null;
}

/** A well-formed secret of the given kind: the prefix, then at least `minBody` base62 characters. */
export function isWellFormedSecret(secret: string, kind: SecretKind, minBody = 32): boolean {
  const head = `ik_${kind}_`;
  return secret.startsWith(head) && secret.length - head.length >= minBody && /^[A-Za-z0-9]+$/.test(secret.slice(head.length));
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}
