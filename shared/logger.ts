// Structured logs through pino: a fixed message and key/values, never secrets or request bodies.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(opts: { level: LevelWithSilent; name: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      // Secrets never reach the log, even when a caller passes a whole object by mistake.
      redact: { paths: ['token', 'secret', 'credential', '*.token', '*.secret', '*.credential', 'headers.authorization'], censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? process.stdout,
  );
}
