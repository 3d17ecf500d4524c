// Projects: the tenant boundary. The hub creates `default` on first start.
import type { Db } from '../db/open.ts';
import { newId } from '../../shared/secrets.ts';
import type { Clock } from '../../shared/clock.ts';
import { isoTime } from '../../shared/clock.ts';

export interface Project {
  id: string;
  slug: string;
  name: string;
  created_at: string;
}

export function createProjectStore(db: Db, clock: Clock) {
  const insert = db.prepare<[string, string, string, string]>('INSERT INTO projects (id, slug, name, created_at) VALUES (?, ?, ?, ?)');
  const bySlug = db.prepare<[string], Project>('SELECT id, slug, name, created_at FROM projects WHERE slug = ?');
  const byId = db.prepare<[string], Project>('SELECT id, slug, name, created_at FROM projects WHERE id = ?');
  const all = db.prepare<[], Project>('SELECT id, slug, name, created_at FROM projects ORDER BY slug');

  return {
    create(slug: string, name: string): Project {
      const project: Project = { id: newId('prj'), slug, name, created_at: isoTime(clock.now()) };
      insert.run(project.id, project.slug, project.name, project.created_at);
      return project;
    },
    getBySlug(slug: string): Project | undefined {
      return bySlug.get(slug);
    },
    getById(id: string): Project | undefined {
      return byId.get(id);
    },
    list(): Project[] {
      return all.all();
    },
    ensure(slug: string, name: string): Project {
      return bySlug.get(slug) ?? this.create(slug, name);
    },
  };
}

export type ProjectStore = ReturnType<typeof createProjectStore>;
