// A replica's log file for the process runtime: the process writes to it directly (so it outlives the agent);
// the agent keeps it bounded and reads it back by lines.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, truncateSync, writeFileSync, fstatSync } from 'node:fs';

/** Each replica keeps at most this much log: the current file plus one previous part. */
export const LOG_MAX_BYTES = 8 * 1024 * 1024;

export function openForChild(path: string): number {
  // O_APPEND: after the agent truncates the file, the child's next write lands at the new end.
  return openSync(path, 'a', 0o600);
}

/** Moves the file's content to `<path>.1` and empties it when it grew past the limit. */
export function boundLogFile(path: string, maxBytes = LOG_MAX_BYTES): void {
  if (!existsSync(path) || statSync(path).size <= maxBytes) return;
  writeFileSync(`${path}.1`, readFileSync(path));
  truncateSync(path, 0);
}

export function readLogLines(path: string): string[] {
  const parts = [`${path}.1`, path].filter(existsSync).map((p) => readFileSync(p, 'utf8'));
  const lines = parts.join('').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The lines of the current file between two byte offsets. */
export function readLogLinesFrom(path: string, from: number, to: number): string[] {
  if (to <= from) return [];
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    readSync(fd, buf, 0, buf.length, from);
    const lines = buf.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  } finally {
    closeSync(fd);
  }
}

/** Yields complete lines appended to the file after `offset`, polling until the signal aborts. */
export async function* followLogFile(path: string, offset: number, signal: AbortSignal, pollMs = 250): AsyncGenerator<string[]> {
  let position = offset;
  let partial = '';
  while (!signal.aborted) {
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {
      size = 0;
    }
    if (size < position) position = 0; // truncated by boundLogFile: start over at the new beginning
    if (size > position) {
      const fd = openSync(path, 'r');
      try {
        const length = Math.min(size - position, 1024 * 1024);
        const buf = Buffer.alloc(length);
        readSync(fd, buf, 0, length, position);
        position += length;
        const text = partial + buf.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        if (lines.length > 0) yield lines;
      } finally {
        closeSync(fd);
      }
      continue;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, pollMs);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
}

export function fileSize(path: string): number {
  try {
    const fd = openSync(path, 'r');
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0;
  }
}
