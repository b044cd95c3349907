import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The secret stored in path, created once (random, URL-safe, mode 0600) so restarts reuse it. */
export async function readOrCreateSecret(path: string): Promise<string> {
  const existing = await readSecret(path);
  if (existing !== undefined) return existing;
  await mkdir(dirname(path), { recursive: true });
  const secret = randomBytes(24).toString('base64url');
  try {
    // 'wx' fails if a concurrent start wrote it first; then we read theirs.
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return (await readSecret(path)) ?? secret;
  }
}

/** The secret stored in path, or undefined when the file does not exist. */
export async function readSecret(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
