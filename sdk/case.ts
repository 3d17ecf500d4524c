// camelCase ↔ snake_case of field names (values untouched, `env` passed through as is), at runtime and in types.

/** Fields whose keys are the user's own (environment variable names): never renamed, at any depth. */
const VERBATIM_FIELDS = new Set(['env']);

export type SnakeToCamel<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<SnakeToCamel<Tail>>}`
  : S;

export type CamelToSnake<S extends string> = S extends `${infer First}${infer Rest}`
  ? First extends Lowercase<First>
    ? `${First}${CamelToSnake<Rest>}`
    : `_${Lowercase<First>}${CamelToSnake<Rest>}`
  : S;

/** The camelCase form of a snake_case wire type: object keys renamed at every depth, except inside `env`. */
export type Camelize<T> = T extends readonly (infer Item)[]
  ? Camelize<Item>[]
  : T extends object
    ? { [K in keyof T as K extends string ? SnakeToCamel<K> : K]: K extends 'env' ? T[K] : Camelize<T[K]> }
    : T;

/** The snake_case wire form of a camelCase type (the inverse of Camelize). */
export type Snakify<T> = T extends readonly (infer Item)[]
  ? Snakify<Item>[]
  : T extends object
    ? { [K in keyof T as K extends string ? CamelToSnake<K> : K]: K extends 'env' ? T[K] : Snakify<T[K]> }
    : T;

export function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function snakeToCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Renames the field names of a camelCase value to snake_case for the wire. */
export function toSnakeKeys(value: unknown): unknown {
  return renameKeys(value, camelToSnake);
}

/** Renames the field names of a wire value to camelCase for the caller. */
export function toCamelKeys(value: unknown): unknown {
  return renameKeys(value, snakeToCamel);
}

function renameKeys(value: unknown, rename: (name: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => renameKeys(item, rename));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    out[rename(key)] = VERBATIM_FIELDS.has(key) ? field : renameKeys(field, rename);
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
