// Requests the hub made of agents that answer with a stream of messages (log reads), by request id; plus the latest
// pull progress of each replica, for operators watching a long image or model pull.
import type { z } from 'zod';
import type { logsChunkSchema, logsEndSchema, pullProgressSchema } from '../../shared/protocol/replicas.ts';

export interface LogReadHandlers {
  onLines(lines: string[]): void;
  onEnd(error?: { code: string; message: string }): void;
}

export interface PullState {
  image: string;
  status: string;
  percent: number | null;
  at: number;
}

export class AgentRequests {
  private readonly logReads = new Map<string, LogReadHandlers>();
  private readonly pulls = new Map<string, PullState>();

  openLogRead(id: string, handlers: LogReadHandlers): void {
    this.logReads.set(id, handlers);
  }

  closeLogRead(id: string): void {
    this.logReads.delete(id);
  }

  onLogsChunk(msg: z.infer<typeof logsChunkSchema>): void {
    this.logReads.get(msg.reply_to)?.onLines(msg.lines);
  }

  onLogsEnd(msg: z.infer<typeof logsEndSchema>): void {
    const handlers = this.logReads.get(msg.reply_to);
    this.logReads.delete(msg.reply_to);
    handlers?.onEnd(msg.error);
  }

  onPullProgress(msg: z.infer<typeof pullProgressSchema>, now: number): void {
    this.pulls.set(msg.replica_id, { image: msg.image, status: msg.status, percent: msg.percent, at: now });
  }

  pullOf(replicaId: string): PullState | undefined {
    return this.pulls.get(replicaId);
  }

  forgetPull(replicaId: string): void {
    this.pulls.delete(replicaId);
  }
}
