// The explicit, append-only list of migrations; a migration's version is its position (1, 2, …).
import { migration001 } from './001-initial.ts';
import { migration002 } from './002-workloads.ts';
import { migration003 } from './003-replicas.ts';
import { migration004 } from './004-request-log.ts';
import { migration005 } from './005-jobs.ts';
import { migration006 } from './006-policies.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006];
