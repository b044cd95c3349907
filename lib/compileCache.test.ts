import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPILE_CACHE_ENV } from './compileCache.ts';

describe('the compile cache', () => {
  it('spares a process that starts again the loading of the type stripper', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'compile-cache-'));
    try {
      await writeFile(
        join(cwd, 'probe.ts'),
        'const loaded: string[] = process.moduleLoadList.filter((m) => m.includes("amaro"));\n' +
          'console.log(loaded.length);\n',
      );
      const run = () =>
        execFileSync(process.execPath, ['probe.ts'], {
          cwd,
          env: { PATH: process.env['PATH'], ...COMPILE_CACHE_ENV },
          encoding: 'utf8',
        }).trim();
      expect(run()).not.toBe('0'); // the first start strips the file itself and fills the cache
      expect(run()).toBe('0');
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('is set in the image for every process, in a directory they may write', async () => {
    const dockerfile = await readFile('Dockerfile', 'utf8');
    const [[name, dir]] = Object.entries(COMPILE_CACHE_ENV) as [[string, string]];
    expect(dockerfile).toContain(`ENV ${name}=${dir}\n`);
    expect(dockerfile).toContain(`RUN mkdir -p ${dir} && chown node:node ${dir}\nUSER node`);
  });
});
