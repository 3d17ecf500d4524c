// The package version, read once from package.json (bundles inline it at build time).
import { createRequire } from 'node:module';

declare const __IK_VERSION__: string | undefined;

function readVersion(): string {
  if (typeof __IK_VERSION__ === 'string') return __IK_VERSION__;
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}

export const VERSION = readVersion();
/** Bumped when the control messages or stream frames change incompatibly. */
export const PROTOCOL_VERSION = 1;
