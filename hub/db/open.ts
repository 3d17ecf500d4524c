// Opens the hub's SQLite database (WAL, foreign keys, busy timeout) and applies pending migrations.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrations as allMigrations, type Migration } from './migrations/index.ts';

export type Db = Database.Database;

export class DatabaseTooNewError extends Error {
  constructor(file: string, found: number, known: number) {
    super(
      `the database ${file} is at schema version ${found}, but this ikhub only knows versions up to ${known}: ` +
        'it was written by a newer ikhub. Run that version (or newer), or restore a backup made for this one.',
    );
    this.name = 'DatabaseTooNewError';
  }
}

export function openDatabase(file: string, migrations: readonly Migration[] = allMigrations): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    // Checked before any pragma writes: a database from the future is refused untouched.
    const found = Number(db.pragma('user_version', { simple: true }));
    if (found > migrations.length) throw new DatabaseTooNewError(file, found, migrations.length);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, file, migrations);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Applies every pending migration in one transaction; refuses a database from the future. */
export function migrate(db: Db, file: string, migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list is out of order: ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
  const current = Number(db.pragma('user_version', { simple: true }));
  const latest = migrations.length;
  if (current > latest) throw new DatabaseTooNewError(file, current, latest);
  if (current === latest) return;
  db.transaction(() => {
    for (const m of migrations.slice(current)) db.exec(m.sql);
    db.pragma(`user_version = ${latest}`);
  }).immediate();
}
