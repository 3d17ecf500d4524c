// Lifecycle events: an append-only log that answers "what happened and why", newest first.
import { z } from 'zod';
import type { Db } from '../db/open.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { readJson, writeJson } from './json-column.ts';

export interface EventRecord {
  id: number;
  at: string;
  project_id: string | null;
  kind: string;
  workload: string | null;
  worker_id: string | null;
  message: string;
  data: Record<string, unknown> | null;
}

interface EventDbRow extends Omit<EventRecord, 'data'> {
  data: string | null;
}

const dataSchema = z.record(z.string(), z.unknown()).nullable();

export interface NewEvent {
  kind: string;
  message: string;
  projectId?: string | null;
  workload?: string | null;
  workerId?: string | null;
  data?: Record<string, unknown>;
}

export interface EventQuery {
  /** Events of this project, plus hub-wide events (no project) when includeHubWide is set. */
  projectId?: string;
  includeHubWide?: boolean;
  workload?: string;
  workerId?: string;
  sinceIso?: string;
  beforeId?: number;
  limit: number;
}

export function createEventStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO events (at, project_id, kind, workload, worker_id, message, data)
     VALUES (@at, @project_id, @kind, @workload, @worker_id, @message, @data)`,
  );

  return {
    record(e: NewEvent): void {
      insert.run({
        at: isoTime(clock.now()),
        project_id: e.projectId ?? null,
        kind: e.kind,
        workload: e.workload ?? null,
        worker_id: e.workerId ?? null,
        message: e.message,
        data: e.data === undefined ? null : writeJson(e.data),
      });
    },
    list(q: EventQuery): EventRecord[] {
      const where: string[] = [];
      const args: Record<string, unknown> = { limit: q.limit };
      if (q.projectId !== undefined) {
        where.push(q.includeHubWide ? '(project_id = @project_id OR project_id IS NULL)' : 'project_id = @project_id');
        args.project_id = q.projectId;
      }
      if (q.workload !== undefined) (where.push('workload = @workload'), (args.workload = q.workload));
      if (q.workerId !== undefined) (where.push('worker_id = @worker_id'), (args.worker_id = q.workerId));
      if (q.sinceIso !== undefined) (where.push('at >= @since'), (args.since = q.sinceIso));
      if (q.beforeId !== undefined) (where.push('id < @before'), (args.before = q.beforeId));
      const sql = `SELECT id, at, project_id, kind, workload, worker_id, message, data FROM events
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      return db
        .prepare<Record<string, unknown>, EventDbRow>(sql)
        .all(args)
        .map((row) => ({ ...row, data: readJson(dataSchema, row.data, 'events.data') }));
    },
  };
}

export type EventStore = ReturnType<typeof createEventStore>;
