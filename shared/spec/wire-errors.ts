// Messages for spec validation in the wire's terms: wrong types and ranges, and unknown keys with what to use instead.
import type { z } from 'zod';

/** How a JSON value reads in a message: `the string "2"`, `null`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
    case 'number':
      return Number.isFinite(value) ? String(value) : 'a non-finite number';
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

const typeNames: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'an array',
};

function quoteList(values: ReadonlyArray<unknown>): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/**
 * The error map `parseWorkloadSpec` parses with: schema-level messages (slug, command, cron…) win over it, and it
 * rephrases zod's generic ones. Returning undefined keeps zod's own message.
 */
export const wireErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'is required';
      const want = typeNames[iss.expected] ?? iss.expected;
      if (iss.expected === 'int' && typeof iss.input === 'number') return `must be a whole number, got ${iss.input}`;
      if ((iss.expected === 'number' || iss.expected === 'int') && typeof iss.input === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(iss.input))
        return `must be ${want}, not ${describeValue(iss.input)}: write ${iss.input.trim()} without quotes`;
      if ((iss.expected === 'object' || iss.expected === 'record') && iss.input === null)
        return 'must be an object, not null (leave the key out to use the defaults)';
      return `must be ${want}, not ${describeValue(iss.input)}`;
    }
    case 'too_small': {
      const min = Number(iss.minimum);
      if (iss.origin === 'string') return min <= 1 ? 'must not be empty' : `must be at least ${min} characters long`;
      if (iss.origin === 'array') return min <= 1 ? 'must list at least one entry' : `must list at least ${min} entries`;
      if (iss.origin === 'object' || iss.origin === 'record') return `must have at least ${min} keys`;
      return iss.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(iss.maximum);
      if (iss.origin === 'string') return `must be at most ${max} characters long`;
      if (iss.origin === 'array') return `must list at most ${max} entries`;
      if (iss.origin === 'object' || iss.origin === 'record') return `must have at most ${max} keys`;
      return iss.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'invalid_value':
      return iss.values.length === 1
        ? `must be ${quoteList(iss.values)}, got ${describeValue(iss.input)}`
        : `must be one of ${quoteList(iss.values)}, got ${describeValue(iss.input)}`;
    case 'invalid_key':
      return iss.issues.map((inner) => inner.message).join('; ') || undefined;
    default:
      return undefined;
  }
};

/** Keys users reach for that the spec does not have, anywhere in it: the key → what to do instead. */
const knownMistakes: Record<string, string> = {
  provider: 'there is no provider: placement is the platform\'s job (use workers.source / gpu_pool)',
  min_vram_gb: 'there is no min_vram_gb: ikhub estimates VRAM from the model; pin GPUs with gpu_pool or worker_id',
  min_replicas: 'there is no min_replicas: autoscaling bounds are min_workers / max_workers (use min_workers)',
  max_replicas: 'there is no max_replicas: autoscaling bounds are min_workers / max_workers (use max_workers)',
  gpu: 'there is no gpu key: ikhub places replicas; pin GPUs by name with gpu_pool or a worker with worker_id',
  gpus: 'there is no gpus key: ikhub places replicas; pin GPUs by name with gpu_pool or a worker with worker_id',
};

export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toLowerCase();
}

/**
 * The message for an unknown `key` in an object whose keys are `known`. `elsewhere` maps keys that belong in another
 * place (another policy's config, a nested object) to a sentence saying where.
 */
export function unknownKeyMessage(key: string, known: readonly string[], elsewhere: Readonly<Record<string, string>> = {}): string {
  const mistake = knownMistakes[key] ?? knownMistakes[snakeCase(key)];
  if (mistake) return mistake;
  const snake = snakeCase(key);
  if (snake !== key && known.includes(snake)) return `unknown key "${key}": use ${snake} (the wire format is snake_case)`;
  if (Object.hasOwn(elsewhere, key)) return `unknown key "${key}" here: ${elsewhere[key]}`;
  if (snake !== key && Object.hasOwn(elsewhere, snake)) return `unknown key "${key}": the wire format is snake_case (${snake}), and ${elsewhere[snake]}`;
  return `unknown key "${key}"; the keys here are ${known.join(', ')}`;
}
