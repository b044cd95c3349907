import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { COMPILE_CACHE_ENV } from '../lib/compileCache.ts';
import { GATEWAY_ENV, GATEWAY_NODE_FLAGS } from './processSettings.ts';

describe('the gateway process settings', () => {
  it('are spelled out where the gateway is started from a file that cannot import them', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
      .scripts;
    const assignments = Object.entries({ ...COMPILE_CACHE_ENV, ...GATEWAY_ENV }).map(
      ([name, value]) => `${name}=${value}`,
    );
    expect(assignments.length).toBeGreaterThan(1);
    expect(scripts['gateway']).toBe(
      `${assignments.join(' ')} node ${GATEWAY_NODE_FLAGS.join(' ')} gateway/server.ts`,
    );
    const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
      services: { gateway: { command: string[]; environment: Record<string, unknown> } };
    };
    const { gateway } = compose.services;
    expect(gateway.command).toEqual(['node', ...GATEWAY_NODE_FLAGS, 'gateway/server.ts']);
    expect(gateway.environment).toMatchObject(GATEWAY_ENV);
  });
});
