import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const dev = { AUTH_MODE: 'dev' };

describe('config', () => {
  it('applies the defaults of runtime.md', () => {
    const config = loadConfig(dev);
    expect(config.GATEWAY_PORT).toBe(4000);
    expect(config.METADATA_PORT).toBe(4001);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.DATA_DIR).toBe('.data');
  });

  it('names a malformed setting and what arrived', () => {
    expect(() => loadConfig({ ...dev, GATEWAY_PORT: 'eighty' })).toThrow(
      new ConfigError(
        'invalid setting GATEWAY_PORT: Invalid input: expected number, received NaN (got "eighty")',
      ),
    );
    expect(() => loadConfig({ ...dev, NATS_URL: 'http://x:4222' })).toThrow(
      /^invalid setting NATS_URL: expected a URL starting with nats:\/\//,
    );
    expect(() => loadConfig({ ...dev, LOG_LEVEL: 'loud' })).toThrow(/^invalid setting LOG_LEVEL/);
  });

  it('refuses to run without a way to verify tokens outside dev mode', () => {
    expect(() => loadConfig({})).toThrow(/missing setting JWT_JWKS_URL or JWT_PUBLIC_KEY/);
    expect(loadConfig({ JWT_JWKS_URL: 'https://idp.example/jwks.json' }).AUTH_MODE).toBe('jwt');
  });

  it('refuses dev auth in production unless explicitly told', () => {
    expect(() => loadConfig({ ...dev, NODE_ENV: 'production' })).toThrow(/AUTH_MODE: "dev" is refused/);
    expect(() =>
      loadConfig({ ...dev, NODE_ENV: 'production', ALLOW_DEV_AUTH_IN_PRODUCTION: 'maybe' }),
    ).toThrow(/^invalid setting ALLOW_DEV_AUTH_IN_PRODUCTION: expected true or false/);
    const insisted = loadConfig({ ...dev, NODE_ENV: 'production', ALLOW_DEV_AUTH_IN_PRODUCTION: 'true' });
    expect(insisted.AUTH_MODE).toBe('dev');
  });

  it('reads the CORS allow-list and refuses an origin with a path', () => {
    expect(
      loadConfig({ ...dev, CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).CORS_ORIGINS,
    ).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(loadConfig(dev).CORS_ORIGINS).toEqual([]);
    expect(() => loadConfig({ ...dev, CORS_ORIGINS: 'https://a.example/app' })).toThrow(
      /^invalid setting CORS_ORIGINS: expected origins like .* \(got "https:\/\/a.example\/app"\)/,
    );
  });

  it('reads the subgraphs that take batches: none by default, names or *', () => {
    expect(loadConfig(dev).SUBGRAPH_BATCHING).toEqual([]);
    expect(loadConfig({ ...dev, SUBGRAPH_BATCHING: 'metrics, insights' }).SUBGRAPH_BATCHING).toEqual([
      'metrics',
      'insights',
    ]);
    expect(loadConfig({ ...dev, SUBGRAPH_BATCHING: '*' }).SUBGRAPH_BATCHING).toEqual(['*']);
    expect(() => loadConfig({ ...dev, SUBGRAPH_BATCHING: 'http://metrics:4002' })).toThrow(
      /^invalid setting SUBGRAPH_BATCHING: expected subgraph names or \*/,
    );
  });

  it('names a required setting that is missing', () => {
    expect(() => loadConfig(dev, ['DATABASE_URL'])).toThrow(/^missing setting DATABASE_URL/);
    expect(loadConfig({ ...dev, DATABASE_URL: 'postgres://u:p@h/db' }, ['DATABASE_URL']).DATABASE_URL).toBe(
      'postgres://u:p@h/db',
    );
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ ...dev, GATEWAY_PORT: '' }).GATEWAY_PORT).toBe(4000);
  });
});
