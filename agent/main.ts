// Starts an agent: inventory, then the tunnel to the hub with hello, heartbeats and inventory updates.
import type { Logger } from '../shared/logger.ts';
import { PROTOCOL_VERSION, VERSION } from '../shared/version.ts';
import { usageOf, type Inventory } from '../shared/inventory.ts';
import type { Reject } from '../shared/protocol/control.ts';
import { ensurePrivateDir } from '../shared/files.ts';
import type { AgentConfig } from './config.ts';
import { credentialPath, loadCredential, saveCredential, type StoredCredential } from './credentials.ts';
import { InventoryPoller, inventoryFingerprint } from './inventory/index.ts';
import { TunnelClient } from './connection.ts';
import { join } from 'node:path';
import { createRuntime } from './runtime/index.ts';
import { ReplicaManager } from './replicas/manager.ts';
import { Mux } from '../shared/protocol/mux.ts';
import { relayStream } from './relay.ts';

/** Streams the hub may have open to this agent at once (the hub enforces its own limit too). */
const MAX_STREAMS = 4096;

/** Exit status when the hub refuses this agent: the systemd unit does not restart on it. */
export const EXIT_REJECTED = 3;

export interface RunningAgent {
  /** Settles when the agent stops for good: the hub rejected it, or stop() was called. */
  done: Promise<{ exitCode: number; reason?: Reject }>;
  workerId(): string | undefined;
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  ensurePrivateDir(config.dataDir);
  const loaded = loadCredential(config.dataDir, config.hubUrl);
  if (loaded.problem) log.warn({ problem: loaded.problem }, 'stored credential not used');
  let stored: StoredCredential | undefined = loaded.credential;
  if (!stored && !config.token) {
    throw new Error(`this agent has not joined ${config.hubUrl} yet: pass --token ik_join_… (or set IK_TOKEN)`);
  }

  const poller = new InventoryPoller({ ...config, log });
  const first = await poller.start();
  log.info({ gpus: first.gpus.length, gpuError: first.gpu_error?.code ?? null, runtime: first.runtime.kind }, 'inventory taken');


  let heartbeatTimer: NodeJS.Timeout | undefined;
  // One multiplexer per tunnel connection: streams die with the socket that carried them.
  let mux: Mux | undefined;
  let seq = 0;
  let sentFingerprint = '';
  let finish!: (result: { exitCode: number; reason?: Reject }) => void;
  const done = new Promise<{ exitCode: number; reason?: Reject }>((resolve) => (finish = resolve));

  const sendInventoryIfChanged = (inv: Inventory) => {
    const fp = inventoryFingerprint(inv);
    if (fp !== sentFingerprint && tunnel.send({ type: 'inventory', inventory: inv })) sentFingerprint = fp;
  };

  const tunnel: TunnelClient = new TunnelClient({
    hubUrl: config.hubUrl,
    hubCa: config.hubCa,
    log,
    token: () => stored?.credential ?? config.token,
    hello: () => {
      const inventory = poller.current();
      sentFingerprint = inventoryFingerprint(inventory);
      return {
        type: 'hello',
        protocol_version: PROTOCOL_VERSION,
        agent_version: VERSION,
        name: config.name,
        inventory,
        replicas: replicas.reports(),
        ...(stored ? { worker_id: stored.worker_id } : {}),
      };
    },
    onWelcome: (welcome) => {
      if (welcome.credential) {
        stored = { hub_url: config.hubUrl, worker_id: welcome.worker_id, credential: welcome.credential };
        saveCredential(config.dataDir, stored);
        log.info({ workerId: welcome.worker_id, file: credentialPath(config.dataDir) }, 'joined the hub; credential stored');
      } else {
        log.info({ workerId: welcome.worker_id }, 'connected to the hub');
      }
      replicas.setWorkerId(welcome.worker_id);
      mux?.close('a new tunnel replaced this one');
      mux = new Mux({
        side: 'agent',
        send: (frame) => void tunnel.sendBinary(frame),
        maxStreams: MAX_STREAMS,
        onStream: (stream, syn) => relayStream(stream, syn, { portOf: (id) => replicas.portOf(id), log }),
        onProtocolError: (reason) => {
          log.error({ reason }, 'the hub sent a malformed stream frame; reconnecting');
          void tunnel.reconnect();
        },
      });
      poller.setInterval(welcome.config.inventory_interval_ms);
      clearInterval(heartbeatTimer);
      heartbeatTimer = setInterval(() => {
        const inv = poller.current();
        tunnel.send({ type: 'heartbeat', seq: seq++, gpus: inv.gpus.map(usageOf), gpu_error: inv.gpu_error, replicas: replicas.reports() });
      }, welcome.heartbeat_interval_ms);
    },
    onReject: (reject) => {
      const hint = stored
        ? ` (to join again, remove ${credentialPath(config.dataDir)} and start with a new join token)`
        : '';
      log.error({ code: reject.code, reason: reject.message }, `the hub refused this agent: ${reject.message}${hint}`);
      // A deleted worker's replicas are stopped; any other refusal leaves them for an agent that is let in.
      const leave = reject.code === 'worker_deleted' ? replicas.stopAll('the worker was deleted on the hub') : Promise.resolve();
      void leave.then(shutdown).then(() => finish({ exitCode: EXIT_REJECTED, reason: reject }));
    },
    onDisconnect: () => {
      clearInterval(heartbeatTimer);
      mux?.close('the tunnel closed');
      mux = undefined;
    },
    onBinary: (frame) => mux?.receive(frame),
    onRequest: (msg) => {
      switch (msg.type) {
        case 'replica.start':
          return replicas.onStart(msg);
        case 'replica.stop':
          return replicas.onStop(msg);
        case 'logs.read':
          return void replicas.onLogsRead(msg);
        case 'logs.cancel':
          return replicas.onLogsCancel(msg.id);
        case 'reply':
          return;
      }
    },
  });
  poller.onSample((inv) => {
    if (tunnel.connected) sendInventoryIfChanged(inv);
  });

  const runtime = createRuntime(first.runtime.kind, config, log, first.runtime.gpu_mode);
  const replicas = new ReplicaManager({ runtime, config, log, stateDir: join(config.dataDir, 'replica-state'), send: (msg) => tunnel.send(msg) });
  // Replicas an earlier agent left running are adopted before the hello, so the hub adopts them too.
  if (stored) await replicas.recover(stored.worker_id);
  tunnel.start();

  async function shutdown(): Promise<void> {
    clearInterval(heartbeatTimer);
    poller.stop();
    await replicas.detachAll();
    await tunnel.stop();
  }

  return {
    done,
    workerId: () => stored?.worker_id,
    async stop() {
      await shutdown();
      finish({ exitCode: 0 });
    },
  };
}
