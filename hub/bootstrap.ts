// Bootstrap secrets: the hub-wide admin token and the shared-pool join token, from the environment or generated once.
import { join } from 'node:path';
import type { Logger } from '../shared/logger.ts';
import { describeSecret, hashesEqual, isWellFormedSecret, newSecret, type NewSecret, type SecretKind } from '../shared/secrets.ts';
import { readFileIfExists, writePrivateFile } from '../shared/files.ts';
import type { Store } from './store/index.ts';
import type { HubConfig } from './config.ts';

export const ADMIN_TOKEN_FILE = 'admin-token';
export const JOIN_TOKEN_FILE = 'join-token';
export const CLI_CONFIG_FILE = 'cli.json';
export const DEFAULT_PROJECT = 'default';

export interface BootstrapSecrets {
  adminToken: string;
  joinToken: string;
  adminTokenFile: string;
  joinTokenFile: string;
  /** True when this start generated the token: the only time it is printed. */
  adminTokenGenerated: boolean;
  joinTokenGenerated: boolean;
}

interface SecretRow {
  id: string;
  hash: string;
  bootstrap: number;
  revoked_at: string | null;
}

interface SecretSlot {
  /** The bootstrap token in force, if any. */
  current(): SecretRow | undefined;
  /** Any token with this secret, revoked or not. */
  find(secret: string): SecretRow | undefined;
  revoke(id: string): void;
  reactivate(id: string): void;
  insert(secret: NewSecret): void;
}

export function bootstrapSecrets(deps: { store: Store; config: HubConfig; log: Logger }): BootstrapSecrets {
  const { store, config } = deps;
  store.projects.ensure(DEFAULT_PROJECT, 'Default');
  const adminTokenFile = join(config.dataDir, ADMIN_TOKEN_FILE);
  const joinTokenFile = join(config.dataDir, JOIN_TOKEN_FILE);

  const admin = settle(store, 'sdk', 'IK_ADMIN_TOKEN', config.adminToken, adminTokenFile, {
    current: () => store.controlTokens.bootstrapAdmin(),
    find: (secret) => store.controlTokens.findBySecret(secret),
    revoke: (id) => store.controlTokens.revoke(id),
    reactivate: (id) => store.controlTokens.reactivateBootstrap(id),
    insert: (secret) => store.controlTokens.insert({ projectId: null, name: 'bootstrap admin', secret, bootstrap: true }),
  });
  const joinToken = settle(store, 'join', 'IK_JOIN_TOKEN', config.joinToken, joinTokenFile, {
    current: () => store.joinTokens.bootstrap(),
    find: (secret) => store.joinTokens.findBySecret(secret),
    revoke: (id) => store.joinTokens.revoke(id),
    reactivate: (id) => store.joinTokens.reactivateBootstrap(id),
    insert: (secret) => store.joinTokens.insert({ projectId: null, name: 'bootstrap shared pool', labels: {}, secret, bootstrap: true }),
  });
  if (admin.replaced) deps.log.info({ file: adminTokenFile }, 'bootstrap admin token registered');
  if (joinToken.replaced) deps.log.info({ file: joinTokenFile }, 'bootstrap join token registered');
  return {
    adminToken: admin.secret,
    joinToken: joinToken.secret,
    adminTokenFile,
    joinTokenFile,
    adminTokenGenerated: admin.generated,
    joinTokenGenerated: joinToken.generated,
  };
}

/**
 * Decides the bootstrap secret of one kind: the environment wins, then the clear copy in the data dir
 * (so operators' scripts keep working across restarts), else a new one. The database keeps only its hash.
 */
function settle(store: Store, kind: SecretKind, envName: string, fromEnv: string | undefined, file: string, slot: SecretSlot) {
  const fromFile = readFileIfExists(file)?.trim();
  let given = fromEnv ?? (fromFile && isWellFormedSecret(fromFile, kind) ? fromFile : undefined);
  // A token revoked through the API stays revoked: only the environment may name it again.
  if (given && !fromEnv && slot.find(given)?.revoked_at) given = undefined;
  const secret = given ? describeSecret(given) : newSecret(kind);
  const current = slot.current();
  const replaced = !current || !hashesEqual(current.hash, secret.hash);
  if (replaced) {
    store.transaction(() => {
      if (current) slot.revoke(current.id);
      const existing = slot.find(secret.secret);
      if (!existing) return slot.insert(secret);
      if (existing.bootstrap !== 1) throw new Error(`${envName} is already in use by another token on this hub: choose a new value`);
      slot.reactivate(existing.id);
    });
  }
  if (fromFile !== secret.secret) writePrivateFile(file, `${secret.secret}\n`);
  return { secret: secret.secret, generated: !given, replaced };
}

/** `cli.json` lets the CLI on this machine find the hub and its admin token. */
export function writeCliConfig(dataDir: string, hubUrl: string, token: string): string {
  const file = join(dataDir, CLI_CONFIG_FILE);
  writePrivateFile(file, `${JSON.stringify({ hub_url: hubUrl, token }, null, 2)}\n`);
  return file;
}
