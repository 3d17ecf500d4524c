// JSON columns are outside data too: parsed with a schema, so a corrupt row fails loudly instead of leaking `any`.
import type { z } from 'zod';

export function readJson<T>(schema: z.ZodType<T>, text: string | null, column: string): T {
  let raw: unknown = null;
  if (text !== null) {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error(`database column ${column} holds invalid JSON`);
    }
  }
  const result = schema.safeParse(raw);
  if (!result.success) throw new Error(`database column ${column} does not match its schema: ${result.error.issues[0]?.message}`);
  return result.data;
}

export function writeJson(value: unknown): string {
  return JSON.stringify(value);
}
