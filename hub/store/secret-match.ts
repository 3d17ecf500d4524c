// Finding the record a presented secret belongs to: look up by public prefix, compare hashes in constant time.
import { hashSecret, hashesEqual, secretPrefix } from '../../shared/secrets.ts';

export function matchSecret<T extends { hash: string }>(secret: string, lookupByPrefix: (prefix: string) => T[]): T | undefined {
  const hash = hashSecret(secret);
  let found: T | undefined;
  // Compare against every candidate, so the time taken does not reveal which one matched.
  for (const row of lookupByPrefix(secretPrefix(secret))) if (hashesEqual(row.hash, hash)) found = row;
  return found;
}

export type SecretStatus = 'valid' | 'revoked' | 'expired';

export function secretStatus(row: { revoked_at: string | null; expires_at: string | null }, nowMs: number): SecretStatus {
  if (row.revoked_at !== null) return 'revoked';
  if (row.expires_at !== null && Date.parse(row.expires_at) <= nowMs) return 'expired';
  return 'valid';
}
