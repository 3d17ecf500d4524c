// Starts a hub: database, bootstrap secrets, control loops, tunnel and HTTP server; returns a handle that stops it all.
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../shared/clock.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { ensurePrivateDir } from '../shared/files.ts';
import type { HubConfig } from './config.ts';
import { openDatabase } from './db/open.ts';
import { createStore, type Store } from './store/index.ts';
import { createSecretBox, loadOrCreateSecretKey } from './secret-box.ts';
import { bootstrapSecrets, writeCliConfig, type BootstrapSecrets } from './bootstrap.ts';
import { createMetrics } from './metrics.ts';
import { WorkerLiveness } from './control/liveness.ts';
import { HeartbeatWriter } from './tunnel/heartbeat-writer.ts';
import { AgentSessions } from './tunnel/session.ts';
import { createTunnelServer } from './tunnel/server.ts';
import { LastUsedRecorder } from './api/last-used.ts';
import { createAgentBundle } from './install/bundle.ts';
import { buildApp } from './app.ts';
import { Reconciler } from './control/reconciler.ts';
import { ReplicaReports } from './control/replica-reports.ts';
import { PolicyLoop } from './control/policy-loop.ts';
import { WorkloadLoads } from './control/workload-loads.ts';
import { AdapterSync } from './control/adapter-sync.ts';
import { AgentRequests } from './tunnel/agent-requests.ts';
import { DataPlane } from './dataplane/data-plane.ts';
import { DEFAULT_MAX_RESULT_BYTES, JobDispatcher } from './dataplane/jobs-dispatcher.ts';
import { AsyncJobsHttp } from './dataplane/jobs-http.ts';

export const DATABASE_FILE = 'hub.db';
/** Adapters a replica should have but does not (a failed load, a restarted backend) are loaded again this often. */
const ADAPTER_RESYNC_MS = 5000;

export interface RunningHub {
  url: string;
  publicUrl: string;
  secrets: BootstrapSecrets;
  cliConfigFile: string;
  store: Store;
  close(): Promise<void>;
}

export async function startHub(config: HubConfig, opts: { log?: Logger; clock?: Clock } = {}): Promise<RunningHub> {
  const log = opts.log ?? createLogger({ level: config.logLevel, name: 'hub' });
  const clock = opts.clock ?? systemClock;
  ensurePrivateDir(config.dataDir);
  const db = openDatabase(join(config.dataDir, DATABASE_FILE));
  const store = createStore(db, clock, createSecretBox(loadOrCreateSecretKey(config.dataDir)));
  const secrets = bootstrapSecrets({ store, config, log });

  const sessions = new AgentSessions();
  const metrics = createMetrics({ store, sessionCount: () => sessions.size });
  const requests = new AgentRequests();
  let replicaReports: ReplicaReports | undefined;
  let dataPlaneRef: DataPlane | undefined;
  const loads = new WorkloadLoads(clock);
  const scheduleNow = () => clock.now() + config.scheduleClockOffsetS * 1000;
  const reconciler = new Reconciler({
    store,
    sessions,
    clock,
    log: log.child({ component: 'reconciler' }),
    config: {
      restartBackoffBaseMs: config.restartBackoffBaseMs,
      placementStrategy: config.placement,
      resyncMs: config.resyncMs,
      stopGraceMs: config.stopGraceS * 1000,
      degradedAfterMs: config.degradedAfterS * 1000,
      drainTimeoutMs: config.drainTimeoutS * 1000,
    },
    onResync: () => replicaReports?.expireGrace(),
    onWorkloadChanged: (workloadId) => dataPlaneRef?.routing.invalidate(workloadId),
    inflight: (replicaId) => dataPlaneRef?.balancer.load(replicaId) ?? 0,
    scheduleNow,
  });
  const policies = new PolicyLoop({ store, clock, log: log.child({ component: 'policies' }), reconciler, loads, scheduleNow, tickMs: config.policyTickMs });
  replicaReports = new ReplicaReports({ store, sessions, reconciler, clock, log, workerGraceS: config.workerGraceS });
  const replicas = replicaReports;
  const liveness = new WorkerLiveness({
    store,
    clock,
    log,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    onTransition: (workerId, state) => replicas.onWorkerState(workerId, state),
  });
  const heartbeats = new HeartbeatWriter({ workers: store.workers, clock, log, flushMs: Math.min(1000, config.heartbeatIntervalMs) });
  const lastUsed = new LastUsedRecorder({ db, clock, flushMs: 2000 });
  const tunnel = createTunnelServer({
    store,
    clock,
    log,
    config,
    metrics,
    liveness,
    heartbeats,
    sessions,
    replicas,
    requests,
    maxFrameBytes: config.maxAgentFrameBytes,
  });
  const dataPlane = new DataPlane({
    store,
    sessions,
    clock,
    log: log.child({ component: 'dataplane' }),
    registry: metrics.registry,
    config: {
      requestTimeoutMs: config.requestTimeoutS * 1000,
      maxStreamsPerAgent: config.maxStreamsPerAgent,
      coldStartTimeoutMs: config.coldStartTimeoutS * 1000,
      coldStartQueue: config.coldStartQueue,
    },
    loads,
    wake: (workloadId) => policies.wake(workloadId),
    scheduleNow,
  });
  dataPlaneRef = dataPlane;
  replicas.onReady((replicaId) => dataPlane.replicaReady(replicaId));
  const adapters = new AdapterSync({
    store,
    log: log.child({ component: 'adapters' }),
    call: (replica, path, body) => dataPlane.callReplica({ ...replica, generation: 0 }, path, body),
    onLoaded: (replicaId, names) => dataPlane.balancer.setAdapters(replicaId, names),
  });
  replicas.onReady((replicaId) => void adapters.replicaReady(replicaId));
  const adapterResync = setInterval(() => void adapters.resync(), ADAPTER_RESYNC_MS);
  adapterResync.unref();
  replicas.onMetrics((replica, metrics) => loads.recordReplicaMetrics(replica.id, metrics));
  let publicUrl = config.publicUrl ?? '';
  const jobs = new JobDispatcher({
    store,
    sessions,
    balancer: dataPlane.balancer,
    pools: dataPlane.pools,
    clock,
    log: log.child({ component: 'jobs' }),
    loads,
    config: {
      concurrencyPerReplica: config.jobConcurrencyPerReplica,
      retentionMs: config.jobRetentionS * 1000,
      requestTimeoutMs: config.requestTimeoutS * 1000,
      maxStreamsPerAgent: config.maxStreamsPerAgent,
      maxResultBytes: DEFAULT_MAX_RESULT_BYTES,
    },
  });
  replicas.onReady(() => jobs.kick());
  const asyncJobs = new AsyncJobsHttp({
    dataPlane,
    store,
    clock,
    log: log.child({ component: 'jobs' }),
    dispatcher: jobs,
    publicUrl: () => publicUrl,
    maxAttempts: config.jobMaxAttempts,
    retentionS: config.jobRetentionS,
  });
  const app = buildApp({
    store,
    clock,
    log,
    config,
    metrics,
    sessions,
    liveness,
    heartbeats,
    lastUsed,
    tunnel,
    bundle: createAgentBundle(),
    publicUrl: () => publicUrl,
    reconciler,
    replicas,
    requests,
    scheduleNow,
    onAdaptersChanged: (workloadId) => {
      dataPlane.routing.invalidate(workloadId);
      void adapters.adaptersChanged(workloadId);
    },
    dataPlane,
    asyncJobs,
    onKeyRevoked: () => dataPlane.keys.clear(),
  });

  liveness.start();
  reconciler.start();
  policies.start();
  jobs.start();
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address() as AddressInfo;
  const scheme = config.tls ? 'https' : 'http';
  const localHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `${scheme}://${formatHost(localHost)}:${address.port}`;
  publicUrl ||= `${scheme}://${formatHost(reachableHost(config.host))}:${address.port}`;
  const cliConfigFile = writeCliConfig(config.dataDir, url, secrets.adminToken);
  log.info({ url, publicUrl, dataDir: config.dataDir }, 'hub listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    publicUrl,
    secrets,
    cliConfigFile,
    store,
    close() {
      closing ??= (async () => {
        jobs.stop();
        clearInterval(adapterResync);
        policies.stop();
        reconciler.stop();
        liveness.stop();
        tunnel.close();
        await app.close();
        heartbeats.flush();
        lastUsed.flush();
        dataPlane.metering.flush();
        db.close();
      })();
      return closing;
    },
  };
}

/** The address GPU boxes should use when IK_PUBLIC_URL is not set: the first non-internal IPv4 address. */
function reachableHost(listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
