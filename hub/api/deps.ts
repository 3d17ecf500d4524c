// What the admin routes need from the running hub.
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Store } from '../store/index.ts';
import type { AgentSessions } from '../tunnel/session.ts';
import type { WorkerLiveness } from '../control/liveness.ts';
import type { HeartbeatWriter } from '../tunnel/heartbeat-writer.ts';
import type { Reconciler } from '../control/reconciler.ts';
import type { ReplicaReports } from '../control/replica-reports.ts';
import type { AgentRequests } from '../tunnel/agent-requests.ts';

export interface ApiDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  sessions: AgentSessions;
  liveness: WorkerLiveness;
  heartbeats: HeartbeatWriter;
  /** The URL agents and clients use to reach this hub (known once the server listens). */
  publicUrl: () => string;
  reconciler: Pick<Reconciler, 'enqueue' | 'workerChanged'>;
  replicas: Pick<ReplicaReports, 'onWorkerDeleted'>;
  requests: AgentRequests;
  /** The time schedules are read at (the hub's clock, shifted by IK_SCHEDULE_CLOCK_OFFSET_S). */
  scheduleNow: () => number;
  /** A data key was revoked: the data plane forgets it at once (instead of within its cache's 2 s). */
  onKeyRevoked?: () => void;
  /** A workload's desired adapters changed (put or delete): its ready replicas load or unload them. */
  onAdaptersChanged?: (workloadId: string) => void;
}
