// The agent as one JavaScript file (esbuild), so a GPU box needs only node ≥ 20; built once per hub process.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../shared/version.ts';

export const AGENT_ENTRY = fileURLToPath(new URL('../../agent/bin.ts', import.meta.url));

export interface BuiltBundle {
  code: Buffer;
  sha256: string;
}

export interface AgentBundle {
  get(): Promise<BuiltBundle>;
}

/** esbuild options shared by the hub (served bundle) and `npm run build:agent` (a file on disk). */
export function agentBuildOptions() {
  return {
    entryPoints: [AGENT_ENTRY],
    bundle: true,
    platform: 'node' as const,
    target: 'node20',
    format: 'cjs' as const,
    // ssh2 (under dockerode) loads optional native addons inside try/catch: they stay out of the bundle.
    external: ['cpu-features', '*.node'],
    // CJS has no import.meta: esbuild would leave `import.meta.url` empty. Point it at the bundle file itself
    // (the banner defines it; "use strict" first, or the banner's line would turn the bundle's strict mode off).
    define: { __IK_VERSION__: JSON.stringify(VERSION), 'import.meta.url': '__ik_bundle_url' },
    banner: {
      js: [
        '#!/usr/bin/env node',
        '"use strict";',
        'var __ik_bundle_url = require("node:url").pathToFileURL(__filename).href;',
      ].join('\n'),
    },
    legalComments: 'none' as const,
    logLevel: 'silent' as const,
  };
}

export function createAgentBundle(): AgentBundle {
  let building: Promise<BuiltBundle> | undefined;
  return {
    get() {
      building ??= (async () => {
        const esbuild = await import('esbuild');
        const result = await esbuild.build({ ...agentBuildOptions(), write: false });
        const code = Buffer.from(result.outputFiles[0]!.contents);
        return { code, sha256: createHash('sha256').update(code).digest('hex') };
      })();
      // A failed build is not cached: the next request tries again.
      building.catch(() => (building = undefined));
      return building;
    },
  };
}
