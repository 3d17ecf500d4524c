// The hub's SQLite file: pragmas, STRICT tables, migrations in one transaction, refusal of a database from the future.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { DatabaseTooNewError, migrate, openDatabase } from '../../hub/db/open.ts';
import { migrations, type Migration } from '../../hub/db/migrations/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ik-db-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshFile = () => join(root, `db${++n}`, 'hub.db');

const userTables = (db: Database.Database) =>
  db
    .prepare<[], { name: string; strict: number }>("SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all();

describe('openDatabase on a new file', () => {
  const file = freshFile();
  const db = openDatabase(file);
  after(() => db.close());

  it('creates the file (and its directory)', () => {
    assert.ok(existsSync(file));
  });

  it('uses WAL, foreign keys and a busy timeout', () => {
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.ok(Number(db.pragma('busy_timeout', { simple: true })) > 0);
    // synchronous=NORMAL is 1
    assert.equal(db.pragma('synchronous', { simple: true }), 1);
  });

  it('records the number of migrations in user_version', () => {
    assert.equal(db.pragma('user_version', { simple: true }), migrations.length);
    assert.ok(migrations.length >= 1);
  });

  it('creates only STRICT tables', () => {
    const tables = userTables(db);
    assert.ok(tables.length >= 5, `tables: ${tables.map((t) => t.name).join(', ')}`);
    for (const t of ['projects', 'control_tokens', 'join_tokens', 'workers', 'events']) {
      assert.ok(tables.some((row) => row.name === t), `table ${t} is missing`);
    }
    for (const t of tables) assert.equal(t.strict, 1, `table ${t.name} is not STRICT`);
  });

  it('enforces foreign keys', () => {
    assert.throws(
      () =>
        db
          .prepare("INSERT INTO join_tokens (id, project_id, name, prefix, hash, created_at) VALUES ('j', 'no-such-project', 'n', 'p', 'h', 't')")
          .run(),
      /FOREIGN KEY/,
    );
  });

  it('lists migrations with versions 1, 2, … in order', () => {
    migrations.forEach((m, i) => assert.equal(m.version, i + 1, m.name));
  });
});

describe('reopening', () => {
  it('is a no-op: same version, same schema, data kept', () => {
    const file = freshFile();
    const first = openDatabase(file);
    first.prepare("INSERT INTO projects (id, slug, name, created_at) VALUES ('prj_1', 'default', 'Default', 'now')").run();
    const schema = first.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').all();
    first.close();

    const again = openDatabase(file);
    try {
      assert.equal(again.pragma('user_version', { simple: true }), migrations.length);
      assert.deepEqual(again.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').all(), schema);
      assert.deepEqual(again.prepare('SELECT slug FROM projects').all(), [{ slug: 'default' }]);
    } finally {
      again.close();
    }
  });

  it('works for an in-memory database', () => {
    const db = openDatabase(':memory:');
    try {
      assert.equal(db.pragma('user_version', { simple: true }), migrations.length);
    } finally {
      db.close();
    }
  });
});

describe('a database from a newer ikhub', () => {
  function futureDb(opts: { wal: boolean }): string {
    const file = freshFile();
    if (opts.wal) {
      const db = openDatabase(file);
      db.pragma(`user_version = ${migrations.length + 5}`);
      db.close();
    } else {
      // As another tool (or a newer ikhub with other settings) might leave it: rollback journal, no WAL.
      openDatabase(file).close();
      const db = new Database(file);
      db.pragma('journal_mode = DELETE');
      db.pragma(`user_version = ${migrations.length + 5}`);
      db.close();
    }
    return file;
  }

  it('is refused with DatabaseTooNewError that says what to do', () => {
    const file = futureDb({ wal: true });
    assert.throws(
      () => openDatabase(file),
      (err: unknown) => {
        assert.ok(err instanceof DatabaseTooNewError, String(err));
        assert.match(err.message, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
        assert.match(err.message, new RegExp(`version ${migrations.length + 5}`));
        assert.match(err.message, new RegExp(`up to ${migrations.length}`));
        assert.match(err.message, /newer ikhub/);
        assert.match(err.message, /restore a backup/);
        return true;
      },
    );
  });

  it('is left byte for byte unchanged', () => {
    const file = futureDb({ wal: true });
    const before = readFileSync(file);
    assert.throws(() => openDatabase(file), DatabaseTooNewError);
    assert.deepEqual(readFileSync(file), before);
    const check = new Database(file, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), migrations.length + 5);
    } finally {
      check.close();
    }
  });

  it('is left unchanged even when it is not in WAL mode', () => {
    const file = futureDb({ wal: false });
    const before = readFileSync(file);
    assert.throws(() => openDatabase(file), DatabaseTooNewError);
    assert.deepEqual(readFileSync(file), before);
  });

  it('migrate() refuses it too, without touching the schema', () => {
    const db = new Database(':memory:');
    try {
      db.pragma('user_version = 9');
      assert.throws(() => migrate(db, ':memory:', migrations), DatabaseTooNewError);
      assert.equal(userTables(db).length, 0);
      assert.equal(db.pragma('user_version', { simple: true }), 9);
    } finally {
      db.close();
    }
  });
});

describe('migrate', () => {
  const one: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE a (x INTEGER) STRICT;' };
  const two: Migration = { version: 2, name: 'two', sql: 'CREATE TABLE b (y INTEGER) STRICT; CREATE TABLE c (z INTEGER) STRICT;' };
  const broken: Migration = {
    version: 2,
    name: 'broken',
    sql: 'CREATE TABLE b (y INTEGER) STRICT; CREATE TABLE half (z INTEGER) STRICT; CREATE TABEL oops (w INTEGER);',
  };
  const tableNames = (db: Database.Database) => userTables(db).map((t) => t.name).sort();

  it('applies all pending migrations and sets user_version to their count', () => {
    const db = new Database(':memory:');
    try {
      migrate(db, ':memory:', [one, two]);
      assert.equal(db.pragma('user_version', { simple: true }), 2);
      assert.deepEqual(tableNames(db), ['a', 'b', 'c']);
    } finally {
      db.close();
    }
  });

  it('applies only the migrations after the current version', () => {
    const db = new Database(':memory:');
    try {
      migrate(db, ':memory:', [one]);
      db.prepare('INSERT INTO a (x) VALUES (1)').run();
      migrate(db, ':memory:', [one, two]);
      assert.equal(db.pragma('user_version', { simple: true }), 2);
      assert.deepEqual(tableNames(db), ['a', 'b', 'c']);
      assert.deepEqual(db.prepare('SELECT x FROM a').all(), [{ x: 1 }]);
    } finally {
      db.close();
    }
  });

  it('runs all pending migrations in one transaction: a broken 2nd leaves nothing of the 1st or 2nd behind', () => {
    const file = freshFile();
    const db = openDatabase(file, []);
    try {
      assert.equal(db.pragma('user_version', { simple: true }), 0);
      assert.throws(() => migrate(db, file, [one, broken]), /syntax error/);
      assert.equal(db.pragma('user_version', { simple: true }), 0);
      assert.deepEqual(tableNames(db), []);
    } finally {
      db.close();
    }
  });

  it('a broken migration after applied ones keeps the old version and no half-created tables', () => {
    const file = freshFile();
    const db = openDatabase(file, [one]);
    try {
      assert.throws(() => migrate(db, file, [one, broken]), /syntax error/);
      assert.equal(db.pragma('user_version', { simple: true }), 1);
      assert.deepEqual(tableNames(db), ['a']);
    } finally {
      db.close();
    }
    // The file on disk agrees after reopening.
    const check = new Database(file, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), 1);
      assert.deepEqual(tableNames(check), ['a']);
    } finally {
      check.close();
    }
  });

  it('openDatabase closes the file and throws when a migration fails', () => {
    const file = freshFile();
    assert.throws(() => openDatabase(file, [one, broken]), /syntax error/);
    const check = new Database(file, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), 0);
      assert.deepEqual(tableNames(check), []);
    } finally {
      check.close();
    }
  });

  it('refuses a migration list that is out of order', () => {
    const db = new Database(':memory:');
    try {
      assert.throws(() => migrate(db, ':memory:', [two, one]), /out of order/);
      assert.equal(db.pragma('user_version', { simple: true }), 0);
    } finally {
      db.close();
    }
  });
});
