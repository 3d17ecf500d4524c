// Data-key authentication (ik_live_…, as a bearer token or X-API-Key), cached briefly so the hot path does not
// read the database on every request; a revoked key stops working within the cache's lifetime (2 s).
import type { IncomingHttpHeaders } from 'node:http';
import type { Store } from '../store/index.ts';
import type { DataKeyRow } from '../store/data-keys.ts';
import { secretStatus } from '../store/secret-match.ts';
import { secretKindOf } from '../../shared/secrets.ts';
import { DataPlaneError } from './openai-error.ts';

const CACHE_MS = 2000;
const CACHE_MAX = 10_000;

export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey.trim() : undefined;
}

export class KeyAuth {
  private readonly cache = new Map<string, { row: DataKeyRow | null; at: number }>();

  constructor(private readonly deps: { store: Store; now: () => number }) {}

  /** The key row for a request to `workloadId`, or the 401 every other case gets. */
  authenticate(secret: string | undefined, workloadId: string): DataKeyRow {
    if (!secret) throw unauthorized('missing API key: send "Authorization: Bearer ik_live_…" or "X-API-Key: ik_live_…"');
    if (secretKindOf(secret) !== 'live') throw unauthorized('invalid API key: the data plane takes a data key (ik_live_…); create one with `ik keys create SLUG`');
    const row = this.lookup(secret);
    if (!row) throw unauthorized('invalid API key');
    const status = secretStatus(row, this.deps.now());
    if (status !== 'valid') throw unauthorized(`invalid API key: the key ${row.prefix}… was ${status}`);
    // Another workload's key is as good as no key here: the same 401, so keys cannot be probed.
    if (row.workload_id !== workloadId) throw unauthorized('invalid API key for this endpoint');
    return row;
  }

  /** Forgets cached keys (a key was revoked through the API in this process). */
  clear(): void {
    this.cache.clear();
  }

  private lookup(secret: string): DataKeyRow | null {
    const now = this.deps.now();
    const hit = this.cache.get(secret);
    if (hit && now - hit.at < CACHE_MS) return hit.row;
    const row = this.deps.store.dataKeys.findBySecret(secret) ?? null;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(secret, { row, at: now });
    return row;
  }
}

function unauthorized(message: string): DataPlaneError {
  return new DataPlaneError(401, message, 'authentication_error', 'invalid_api_key');
}
