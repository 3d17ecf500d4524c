// Helpers for reading configuration from the environment with zod: empty strings count as unset.
import { z } from 'zod';
import { detailsFromIssues } from './errors.ts';

/** An optional env string: unset and empty both mean "use the default". */
export const envString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

export const envBool = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    ctx.addIssue({ code: 'custom', message: `expected true or false, got "${v}"` });
    return z.NEVER;
  });

export function envInt(opts: { min?: number; max?: number } = {}) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      if (!/^-?\d+$/.test(v.trim())) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number, got "${v}"` });
        return z.NEVER;
      }
      const n = Number(v);
      if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
        ctx.addIssue({ code: 'custom', message: `must be between ${opts.min ?? '-∞'} and ${opts.max ?? '∞'}, got ${n}` });
        return z.NEVER;
      }
      return n;
    });
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses `source` with `schema`, or throws one ConfigError that lists every problem by variable name. */
export function parseConfig<T>(schema: z.ZodType<T>, source: unknown, what: string): T {
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const lines = detailsFromIssues(result.error.issues).map((d) => `${d.path || '(config)'}: ${d.message}`);
  throw new ConfigError(`invalid ${what} configuration: ${lines.join('; ')}`);
}

export function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
