import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
    const compose = readFileSync('docker-compose.yml', 'utf8');
    const service = compose.slice(compose.indexOf('\n  gateway:\n'), compose.indexOf('\n  nginx:'));
    const command = ['node', ...GATEWAY_NODE_FLAGS, 'gateway/server.ts']
      .map((word) => `'${word}'`)
      .join(', ');
    expect(service).toContain(`command: [${command}]`);
    for (const [name, value] of Object.entries(GATEWAY_ENV)) expect(service).toContain(`${name}: '${value}'`);
  });
});
