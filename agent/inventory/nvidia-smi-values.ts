// Cell-level reading of nvidia-smi values: absent-value tokens, numbers with units, version strings.

/**
 * nvidia-smi prints an absent value as `[N/A]`, bare `N/A`, `[Not Supported]`, `[Unknown Error]`,
 * `[Insufficient Permissions]`, `[GPU requires reset]`, an empty cell, and new bracketed words with new
 * drivers; all of them mean "no value", never 0.
 */
export function isAbsentValue(cell: string): boolean {
  const text = cell.trim();
  return text === '' || /^\[.*\]$/s.test(text) || /^(n\/a|not supported|unknown error)$/i.test(text);
}

/** The cell as a string, or null when it is an absent-value token. */
export function presentText(cell: string | undefined): string | null {
  if (cell === undefined || isAbsentValue(cell)) return null;
  return cell.trim();
}

const numberWithUnit = /^(-?\d+(?:\.\d+)?)\s*(mib|%|c)?$/i;

/**
 * A number, tolerating the unit nvidia-smi prints without `nounits` (`81559 MiB`, `41 %`) and in XML (`36 C`).
 * `undefined` means "present but not a number", so callers can tell garbage from an absent value.
 */
export function readNumber(cell: string | undefined): number | null | undefined {
  const text = presentText(cell);
  if (text === null) return null;
  const match = numberWithUnit.exec(text);
  if (!match?.[1]) return undefined;
  const value = Number(match[1]);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * The leading dotted version in a value (`590.48.01`, `13.3`, `610.57.04 [Deprecated; …]`), else null.
 * Anchored at the start so R610's `Deprecated, see "KMD version" instead` is never taken for a version.
 */
export function readVersion(value: string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  const match = /^\s*(\d+(?:\.\d+)+)/.exec(value);
  return match?.[1] ?? null;
}

/** MIG mode as the worker object spells it; null for `[N/A]` (GPUs without MIG) and for anything unexpected. */
export function readMigMode(value: string | null): 'enabled' | 'disabled' | null {
  if (value === null) return null;
  const text = value.trim().toLowerCase();
  return text === 'enabled' || text === 'disabled' ? text : null;
}

/** Keeps messages to the operator short: the first meaningful line of a tool's output, clipped. */
export function firstLine(text: string, max = 200): string {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
