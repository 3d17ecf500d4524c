// The one-line install: /install.sh, the agent bundle (+ .sha256) and the hub's own Node runtime.
import { createReadStream, statSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AgentBundle } from './bundle.ts';
import { renderInstallScript } from './install-sh.ts';

export function registerInstallRoutes(app: FastifyInstance, deps: { bundle: AgentBundle; publicUrl: () => string }): void {
  app.get('/install.sh', (_req, reply) =>
    reply
      .type('text/x-shellscript; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(renderInstallScript({ hubUrl: deps.publicUrl(), hubOs: process.platform, hubArch: process.arch })),
  );
  app.get('/agent/bundle', async (_req, reply) => {
    const bundle = await deps.bundle.get();
    return reply
      .type('application/javascript')
      .header('x-ik-sha256', bundle.sha256)
      .header('cache-control', 'no-store')
      .send(bundle.code);
  });
  app.get('/agent/bundle.sha256', async (_req, reply) => {
    const bundle = await deps.bundle.get();
    // Never cached: a proxy that kept an old checksum beside a new bundle would fail every install.
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(`${bundle.sha256}  agent.cjs\n`);
  });
  app.get('/agent/node', (_req, reply) => {
    const size = statSync(process.execPath).size;
    return reply
      .type('application/octet-stream')
      .header('content-length', size)
      .header('x-ik-node-version', process.version)
      .header('x-ik-platform', `${process.platform}-${process.arch}`)
      .send(createReadStream(process.execPath));
  });
}
