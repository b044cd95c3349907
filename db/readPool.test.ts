// Which failures on the read replica send a read to the primary: connection losses and a hot standby's
// recovery conflicts, not a failure the primary would give alike (test/readReplica.test.ts runs both
// retries over a real standby).
import { describe, expect, it } from 'vitest';
import { replicaFailure } from './readPool.ts';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('replicaFailure', () => {
  it.each([
    ['a standby cancelling a query to go on replaying', pgError('40001'), 'recovery_conflict'],
    ['a standby breaking a deadlock with replay', pgError('40P01'), 'recovery_conflict'],
    [
      'a terminated backend',
      pgError('57P01', 'terminating connection due to administrator command'),
      'connection_lost',
    ],
    ['a server that is starting or shutting down', pgError('57P03'), 'connection_lost'],
    ['a connection exception', pgError('08006'), 'connection_lost'],
    ['a reset socket', pgError('ECONNRESET'), 'connection_lost'],
    ['a connection ended under a query', new Error('Connection terminated unexpectedly'), 'connection_lost'],
    [
      'a client that already lost its connection',
      new Error('Client has encountered a connection error and is not queryable'),
      'connection_lost',
    ],
  ])('runs again on the primary after %s', (_, error, reason) => {
    expect(replicaFailure(error)).toBe(reason);
  });

  it.each([
    ['a syntax error', pgError('42601')],
    ['a row-level security refusal', pgError('42501')],
    ['a statement timeout', pgError('57014')],
    ['an error of the read itself', new Error('no such KPI')],
    ['nothing', undefined],
  ])('fails as it would on the primary after %s', (_, error) => {
    expect(replicaFailure(error)).toBeUndefined();
  });
});
