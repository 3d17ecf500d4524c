// The worker credential (ik_agent_…) the hub issued on first join, kept 0600 in the agent's data dir.
import { join } from 'node:path';
import { z } from 'zod';
import { readFileIfExists, writePrivateFile } from '../shared/files.ts';

export const CREDENTIAL_FILE = 'agent-credential.json';

const credentialSchema = z.object({
  hub_url: z.string(),
  worker_id: z.string().regex(/^wrk_[A-Za-z0-9]+$/),
  credential: z.string().regex(/^ik_agent_[A-Za-z0-9]+$/),
});
export type StoredCredential = z.infer<typeof credentialSchema>;

export function credentialPath(dataDir: string): string {
  return join(dataDir, CREDENTIAL_FILE);
}

/** The stored credential for this hub; a file for another hub or a damaged file counts as none. */
export function loadCredential(dataDir: string, hubUrl: string): { credential?: StoredCredential; problem?: string } {
  const file = credentialPath(dataDir);
  const text = readFileIfExists(file);
  if (text === undefined) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { problem: `${file} is not valid JSON; ignoring it` };
  }
  const parsed = credentialSchema.safeParse(raw);
  if (!parsed.success) return { problem: `${file} is not a credential file; ignoring it` };
  if (parsed.data.hub_url !== hubUrl) return { problem: `${file} belongs to the hub at ${parsed.data.hub_url}; joining ${hubUrl} with the join token` };
  return { credential: parsed.data };
}

export function saveCredential(dataDir: string, value: StoredCredential): void {
  writePrivateFile(credentialPath(dataDir), `${JSON.stringify(value, null, 2)}\n`);
}
