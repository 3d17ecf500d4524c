// Admission of an agent: a join token registers a new worker (and mints its credential); a credential resumes one.
import type { Hello, RejectCode } from '../../shared/protocol/control.ts';
import { newSecret, secretKindOf } from '../../shared/secrets.ts';
import type { Store } from '../store/index.ts';
import type { WorkerRecord } from '../store/workers.ts';
import { secretStatus } from '../store/secret-match.ts';

export type Admission =
  | { ok: true; worker: WorkerRecord; credential?: string; how: 'joined' | 'rejoined' | 'resumed'; previousState: WorkerRecord['state'] | null }
  | { ok: false; code: RejectCode; message: string };

export interface AdmitDeps {
  store: Store;
  nowMs: number;
  isConnected: (workerId: string) => boolean;
}

export function admitAgent(deps: AdmitDeps, token: string | undefined, hello: Hello): Admission {
  if (!token) return reject('invalid_token', 'no token presented: start the agent with --token ik_join_… (or IK_TOKEN)');
  switch (secretKindOf(token)) {
    case 'agent':
      return resume(deps, token, hello);
    case 'join':
      return join(deps, token, hello);
    default:
      return reject('invalid_token', 'the token is neither a join token (ik_join_…) nor a worker credential (ik_agent_…)');
  }
}

function resume(deps: AdmitDeps, credential: string, hello: Hello): Admission {
  const worker = deps.store.workers.findByCredential(credential);
  if (!worker) {
    return reject(
      'credential_revoked',
      'this worker credential is not valid on this hub (the worker was deleted, or the hub lost its database): ' +
        "remove the agent's credential file and join again with a join token",
    );
  }
  if (hello.worker_id !== undefined && hello.worker_id !== worker.id) {
    return reject('invalid_token', `the credential belongs to ${worker.id}, not to ${hello.worker_id}`);
  }
  deps.store.workers.updateInventory(worker.id, hello.agent_version, hello.inventory);
  deps.store.workers.markConnected(worker.id);
  return { ok: true, worker: deps.store.workers.getById(worker.id)!, how: 'resumed', previousState: worker.state };
}

function join(deps: AdmitDeps, token: string, hello: Hello): Admission {
  const { store } = deps;
  const joinToken = store.joinTokens.findBySecret(token);
  if (!joinToken) return reject('invalid_token', 'the join token is not known to this hub: create one with `ik join-token create`');
  const status = secretStatus(joinToken, deps.nowMs);
  if (status === 'revoked') return reject('token_revoked', `the join token ${joinToken.prefix}… was revoked: create a new one with \`ik join-token create\``);
  if (status === 'expired') return reject('token_expired', `the join token ${joinToken.prefix}… expired at ${joinToken.expires_at}: create a new one`);

  return store.transaction((): Admission => {
    const credential = newSecret('agent');
    const existing = store.workers.getByName(hello.name);
    if (existing) {
      // A reinstalled box keeps its worker row (and its id) instead of leaving a dead duplicate behind.
      if (deps.isConnected(existing.id) || existing.project_id !== joinToken.project_id) {
        return reject('name_in_use', `a worker named "${hello.name}" is already registered: start this agent with a different --name`);
      }
      store.workers.replaceCredential(existing.id, credential);
      store.workers.updateInventory(existing.id, hello.agent_version, hello.inventory);
      store.workers.markConnected(existing.id);
      store.joinTokens.recordUse(joinToken.id);
      return { ok: true, worker: store.workers.getById(existing.id)!, credential: credential.secret, how: 'rejoined', previousState: existing.state };
    }
    const worker = store.workers.insert({
      name: hello.name,
      projectId: joinToken.project_id,
      labels: joinToken.labels,
      agentVersion: hello.agent_version,
      inventory: hello.inventory,
      credential,
      joinTokenId: joinToken.id,
    });
    store.joinTokens.recordUse(joinToken.id);
    return { ok: true, worker, credential: credential.secret, how: 'joined', previousState: null };
  });
}

function reject(code: RejectCode, message: string): Admission {
  return { ok: false, code, message };
}
