// Seals secrets at rest (workload env) with AES-256-GCM under a key kept 0600 in the data dir.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileIfExists, writePrivateFile } from '../shared/files.ts';

export const SECRET_KEY_FILE = 'secret.key';

export interface SecretBox {
  seal(plain: string): string;
  open(sealed: string): string;
}

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('the secret key must be 32 bytes');
  return {
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
    },
    open(sealed) {
      const [version, iv, tag, body] = sealed.split(':');
      if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('sealed value has an unknown format');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      try {
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
      } catch {
        throw new Error(`cannot open a sealed secret: ${SECRET_KEY_FILE} in the data dir is not the key it was sealed with`);
      }
    },
  };
}

/** The hub's key: read from the data dir, or created there on first start (back it up with the database). */
export function loadOrCreateSecretKey(dataDir: string): Buffer {
  const file = join(dataDir, SECRET_KEY_FILE);
  const text = readFileIfExists(file);
  if (text !== undefined) {
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} is damaged (expected 32 bytes, base64): restore it from a backup`);
    return key;
  }
  const key = randomBytes(32);
  writePrivateFile(file, `${key.toString('base64')}\n`);
  return key;
}
