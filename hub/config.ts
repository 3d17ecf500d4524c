// Hub configuration: environment first, flags override; validated once with zod, then frozen and passed explicitly.
import { z } from 'zod';
import { isWellFormedSecret } from '../shared/secrets.ts';
import { ConfigError, deepFreeze, envBool, envInt, envString, parseConfig } from '../shared/env.ts';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const hubEnvSchema = z.object({
  IK_PORT: envInt({ min: 0, max: 65535 }),
  IK_HOST: envString,
  IK_DATA_DIR: envString,
  IK_PUBLIC_URL: envString.pipe(z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional()),
  IK_ADMIN_TOKEN: envString.refine((v) => v === undefined || isWellFormedSecret(v, 'sdk'), {
    message: 'must be "ik_sdk_" followed by at least 32 letters or digits (or unset, to generate one)',
  }),
  IK_JOIN_TOKEN: envString.refine((v) => v === undefined || isWellFormedSecret(v, 'join'), {
    message: 'must be "ik_join_" followed by at least 32 letters or digits (or unset, to generate one)',
  }),
  IK_HEARTBEAT_INTERVAL_MS: envInt({ min: 50, max: 600_000 }),
  IK_INVENTORY_INTERVAL_MS: envInt({ min: 50, max: 3_600_000 }),
  IK_PING_INTERVAL_MS: envInt({ min: 50, max: 600_000 }),
  IK_WORKER_GRACE_S: envInt({ min: 0, max: 86_400 }),
  IK_RESTART_BACKOFF_BASE_MS: envInt({ min: 1, max: 3_600_000 }),
  IK_METRICS_PUBLIC: envBool,
  IK_TLS_CERT: envString,
  IK_TLS_KEY: envString,
  IK_BODY_LIMIT_BYTES: envInt({ min: 1024, max: 1024 * 1024 * 1024 }),
  IK_MAX_AGENT_FRAME_BYTES: envInt({ min: 1024, max: 64 * 1024 * 1024 }),
  IK_LOG_LEVEL: envString.pipe(z.enum(levels).optional()),
  IK_PLACEMENT: envString.pipe(z.enum(['spread', 'binpack']).optional()),
  IK_RESYNC_MS: envInt({ min: 50, max: 3_600_000 }),
  IK_DEGRADED_AFTER_S: envInt({ min: 1, max: 86_400 }),
  IK_STOP_GRACE_S: envInt({ min: 0, max: 600 }),
  IK_MAX_STREAMS_PER_AGENT: envInt({ min: 1, max: 65_536 }),
  IK_DATAPLANE_BODY_LIMIT_BYTES: envInt({ min: 1024, max: 4 * 1024 * 1024 * 1024 }),
  IK_REQUEST_TIMEOUT_S: envInt({ min: 1, max: 86_400 }),
  IK_JOB_RETENTION_S: envInt({ min: 60, max: 366 * 86_400 }),
  IK_JOB_CONCURRENCY_PER_REPLICA: envInt({ min: 1, max: 1024 }),
  IK_JOB_MAX_ATTEMPTS: envInt({ min: 1, max: 100 }),
  IK_POLICY_TICK_MS: envInt({ min: 50, max: 60_000 }),
  IK_COLD_START_TIMEOUT_S: envInt({ min: 1, max: 86_400 }),
  IK_COLD_START_QUEUE: envInt({ min: 0, max: 100_000 }),
  IK_DRAIN_TIMEOUT_S: envInt({ min: 0, max: 86_400 }),
  IK_SCHEDULE_CLOCK_OFFSET_S: envInt({ min: -20 * 366 * 86_400, max: 20 * 366 * 86_400 }),
});

export interface HubFlags {
  port?: number;
  host?: string;
  dataDir?: string;
  publicUrl?: string;
  logLevel?: string;
}

export interface HubConfig {
  port: number;
  host: string;
  dataDir: string;
  /** Set when IK_PUBLIC_URL is given; otherwise derived from the listen address once the server listens. */
  publicUrl: string | undefined;
  adminToken: string | undefined;
  joinToken: string | undefined;
  heartbeatIntervalMs: number;
  inventoryIntervalMs: number;
  pingIntervalMs: number;
  workerGraceS: number;
  restartBackoffBaseMs: number;
  metricsPublic: boolean;
  tls: { cert: string; key: string } | undefined;
  bodyLimitBytes: number;
  maxAgentFrameBytes: number;
  logLevel: (typeof levels)[number];
  /** How the scheduler ranks workers: spread replicas across workers (default) or pack them tight. */
  placement: 'spread' | 'binpack';
  /** How often the reconciler looks at every workload again, whatever happened. */
  resyncMs: number;
  /** Fewer replicas ready than desired for this long makes an active workload degraded. */
  degradedAfterS: number;
  /** How long a stopping replica may take before it is killed. */
  stopGraceS: number;
  /** Relayed requests (streams) open to one agent at once; more get 503. */
  maxStreamsPerAgent: number;
  /** Largest data-plane request body (audio uploads, images): 413 above. */
  dataPlaneBodyLimitBytes: number;
  /** A relayed request running longer is cancelled upstream and answered 504. */
  requestTimeoutS: number;
  /** Finished async jobs (and their results) are kept this long. */
  jobRetentionS: number;
  /** Async jobs one replica runs at once. */
  jobConcurrencyPerReplica: number;
  /** Runs an async job gets before it fails (a replica that died, a backend 5xx). */
  jobMaxAttempts: number;
  /** How often policies are applied: autoscaler decisions, schedules opening and closing, inactive timeouts. */
  policyTickMs: number;
  /** fixed and scheduled workloads waking up: how long a request waits, and how many may (autoscaling sets its own). */
  coldStartTimeoutS: number;
  coldStartQueue: number;
  /** A replica scaled down with requests in flight is told to stop once they finish, or after this long. */
  drainTimeoutS: number;
  /** Shifts the clock schedules are read at (for testing windows without waiting for them); 0 in production. */
  scheduleClockOffsetS: number;
}

export function loadHubConfig(env: NodeJS.ProcessEnv, flags: HubFlags = {}): Readonly<HubConfig> {
  // Flags override the environment and go through the same schema, so a bad flag gets the same clear message.
  const source: Record<string, string | undefined> = { ...env };
  const flagVars: Record<string, unknown> = {
    IK_PORT: flags.port,
    IK_HOST: flags.host,
    IK_DATA_DIR: flags.dataDir,
    IK_PUBLIC_URL: flags.publicUrl,
    IK_LOG_LEVEL: flags.logLevel,
  };
  for (const [k, v] of Object.entries(flagVars)) if (v !== undefined) source[k] = String(v);
  const checked = parseConfig(hubEnvSchema, source, 'hub');
  if (Boolean(checked.IK_TLS_CERT) !== Boolean(checked.IK_TLS_KEY)) {
    throw new ConfigError('invalid hub configuration: IK_TLS_CERT and IK_TLS_KEY must be set together');
  }
  const heartbeatIntervalMs = checked.IK_HEARTBEAT_INTERVAL_MS ?? 5000;
  return deepFreeze({
    port: checked.IK_PORT ?? 8080,
    host: checked.IK_HOST ?? '0.0.0.0',
    dataDir: checked.IK_DATA_DIR ?? './.ik',
    publicUrl: checked.IK_PUBLIC_URL?.replace(/\/+$/, ''),
    adminToken: checked.IK_ADMIN_TOKEN,
    joinToken: checked.IK_JOIN_TOKEN,
    heartbeatIntervalMs,
    inventoryIntervalMs: checked.IK_INVENTORY_INTERVAL_MS ?? Math.max(heartbeatIntervalMs, 5000),
    pingIntervalMs: checked.IK_PING_INTERVAL_MS ?? Math.max(heartbeatIntervalMs * 3, 15000),
    workerGraceS: checked.IK_WORKER_GRACE_S ?? 60,
    restartBackoffBaseMs: checked.IK_RESTART_BACKOFF_BASE_MS ?? 10_000,
    metricsPublic: checked.IK_METRICS_PUBLIC ?? false,
    tls: checked.IK_TLS_CERT && checked.IK_TLS_KEY ? { cert: checked.IK_TLS_CERT, key: checked.IK_TLS_KEY } : undefined,
    bodyLimitBytes: checked.IK_BODY_LIMIT_BYTES ?? 1024 * 1024,
    maxAgentFrameBytes: checked.IK_MAX_AGENT_FRAME_BYTES ?? 1024 * 1024,
    logLevel: checked.IK_LOG_LEVEL ?? 'info',
    placement: checked.IK_PLACEMENT ?? 'spread',
    resyncMs: checked.IK_RESYNC_MS ?? 10_000,
    degradedAfterS: checked.IK_DEGRADED_AFTER_S ?? 900,
    stopGraceS: checked.IK_STOP_GRACE_S ?? 30,
    maxStreamsPerAgent: checked.IK_MAX_STREAMS_PER_AGENT ?? 1024,
    dataPlaneBodyLimitBytes: checked.IK_DATAPLANE_BODY_LIMIT_BYTES ?? 64 * 1024 * 1024,
    requestTimeoutS: checked.IK_REQUEST_TIMEOUT_S ?? 600,
    jobRetentionS: checked.IK_JOB_RETENTION_S ?? 7 * 86_400,
    jobConcurrencyPerReplica: checked.IK_JOB_CONCURRENCY_PER_REPLICA ?? 4,
    jobMaxAttempts: checked.IK_JOB_MAX_ATTEMPTS ?? 3,
    policyTickMs: checked.IK_POLICY_TICK_MS ?? 1000,
    coldStartTimeoutS: checked.IK_COLD_START_TIMEOUT_S ?? 300,
    coldStartQueue: checked.IK_COLD_START_QUEUE ?? 100,
    drainTimeoutS: checked.IK_DRAIN_TIMEOUT_S ?? checked.IK_REQUEST_TIMEOUT_S ?? 600,
    scheduleClockOffsetS: checked.IK_SCHEDULE_CLOCK_OFFSET_S ?? 0,
  });
}
