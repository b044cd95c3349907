import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS } from './nodeFlags.ts';

describe('the gateway node flags', () => {
  it('are spelled out where the gateway is started from a file that cannot import them', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts['gateway']).toBe(`node ${GATEWAY_NODE_FLAGS.join(' ')} gateway/server.ts`);
    const compose = readFileSync('docker-compose.yml', 'utf8');
    const command = ['node', ...GATEWAY_NODE_FLAGS, 'gateway/server.ts']
      .map((word) => `'${word}'`)
      .join(', ');
    expect(compose).toContain(`command: [${command}]`);
  });
});
