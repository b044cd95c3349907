import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, migrationsDir } from '../db/migrate.ts';
import {
  assertRowLevelSecurity,
  createPool,
  withTenant,
  withTenantRead,
  withTenantReadFrom,
} from '../db/pool.ts';
import { eventStore, type IncomingEvent } from '../subgraphs/metrics/store.ts';
import { createTestDatabase, TEST_APP_PASSWORD, type TestDatabase } from './support/services.ts';
import { scratchDir } from '../scripts/scratchDir.ts';

let db: TestDatabase;
let app: pg.Pool;
let admin: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool(db.appUrl, 4);
  admin = createPool(db.adminUrl, 2);
  await admin.query(
    `INSERT INTO kpis (tenant_id, code, name, event_name, aggregation) VALUES
       ('acme', 'orders', 'Orders', 'order.placed', 'COUNT'),
       ('globex', 'orders', 'Globex orders', 'order.placed', 'COUNT'),
       ('globex', 'secret', 'Secret', 'x', 'COUNT')`,
  );
});
afterAll(async () => {
  await app?.end();
  await admin?.end();
  await db?.drop();
});

describe('migrations', () => {
  it('are idempotent: a second run applies nothing and changes nothing', async () => {
    const before = await admin.query('SELECT version, checksum FROM schema_migrations ORDER BY version');
    const { applied } = await migrate({ adminUrl: db.adminUrl, appPassword: TEST_APP_PASSWORD });
    expect(applied).toEqual([]);
    const after = await admin.query('SELECT version, checksum FROM schema_migrations ORDER BY version');
    expect(after.rows).toEqual(before.rows);
    expect(after.rows.length).toBeGreaterThan(0);
  });

  it('apply once when several processes start at the same moment', async () => {
    const fresh = await createTestDatabase();
    try {
      // createTestDatabase migrated it; add a new migration and race five runners for it.
      const dir = await scratchDir('migrations');
      await cp(migrationsDir, dir, { recursive: true });
      await writeFile(join(dir, '9999_probe.sql'), 'CREATE TABLE probe (tenant_id text NOT NULL, n int);');
      const runs = await Promise.all(
        Array.from({ length: 5 }, () => migrate({ adminUrl: fresh.adminUrl, dir })),
      );
      expect(runs.map((r) => r.applied.length).sort()).toEqual([0, 0, 0, 0, 1]);
      await rm(dir, { recursive: true, force: true });
    } finally {
      await fresh.drop();
    }
  });

  it('refuse a migration that was edited after it was applied', async () => {
    const dir = await scratchDir('migrations');
    await cp(migrationsDir, dir, { recursive: true });
    await writeFile(join(dir, '0001_foundation.sql'), '-- edited\n', { flag: 'a' });
    await expect(migrate({ adminUrl: db.adminUrl, dir })).rejects.toThrow(
      /migration 0001_foundation\.sql was changed after it was applied/,
    );
    await rm(dir, { recursive: true, force: true });
  });

  it('put every table under forced row-level security with a tenant_id column', async () => {
    const { rows } = await admin.query<{
      relname: string;
      relrowsecurity: boolean;
      relforcerowsecurity: boolean;
      has_tenant: boolean;
    }>(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
              EXISTS (SELECT FROM information_schema.columns
                       WHERE table_name = c.relname AND column_name = 'tenant_id') AS has_tenant
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const row of rows)
      expect(row, row.relname).toMatchObject({
        relrowsecurity: true,
        relforcerowsecurity: true,
        has_tenant: true,
      });
  });
});

describe('row-level security', () => {
  it('shows a tenant only its own rows, even without a WHERE clause', async () => {
    const rows = await withTenant(
      app,
      'acme',
      async (client) =>
        (await client.query<{ tenant_id: string; code: string }>('SELECT tenant_id, code FROM kpis')).rows,
    );
    expect(rows).toEqual([{ tenant_id: 'acme', code: 'orders' }]);
    const theirs = await withTenant(
      app,
      'acme',
      async (client) =>
        (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM kpis WHERE tenant_id = 'globex'"))
          .rows[0],
    );
    expect(theirs).toEqual({ n: 0 });
  });

  it('shows nothing when no tenant is set', async () => {
    const { rows } = await app.query('SELECT * FROM kpis');
    expect(rows).toEqual([]);
  });

  it('refuses writing a row into another tenant', async () => {
    await expect(
      withTenant(app, 'acme', (client) =>
        client.query(
          `INSERT INTO kpis (tenant_id, code, name, event_name, aggregation) VALUES ('globex', 'x', 'x', 'e', 'COUNT')`,
        ),
      ),
    ).rejects.toThrow(/row-level security/);
    const updated = await withTenant(app, 'acme', (client) =>
      client.query(`UPDATE kpis SET name = 'mine' WHERE tenant_id = 'globex'`),
    );
    expect(updated.rowCount).toBe(0);
  });

  it('sets a tenant id with quotes and backslashes exactly as given, and nothing else', async () => {
    const tenant = `o'brien\\'; SET app.tenant_id = 'acme'; --`;
    const seen = await withTenant(app, tenant, async (client) => {
      const setting = await client.query<{ tenant: string }>(
        "SELECT current_setting('app.tenant_id') AS tenant",
      );
      const kpis = await client.query('SELECT * FROM kpis');
      return { tenant: setting.rows[0]!.tenant, kpis: kpis.rows.length };
    });
    expect(seen).toEqual({ tenant, kpis: 0 });
  });

  it('keeps the tenant setting to its own transaction', async () => {
    await withTenant(app, 'globex', (client) => client.query('SELECT 1'));
    const { rows } = await app.query("SELECT coalesce(current_setting('app.tenant_id', true), '') AS tenant");
    expect(rows.every((r: { tenant: string }) => r.tenant === '')).toBe(true);
  });

  it('reads in a read-only transaction of the tenant, answered before its commit, and refuses writes', async () => {
    const single = createPool(db.appUrl, 1, 'db-test-single');
    try {
      const rows = await withTenantRead(
        single,
        'acme',
        async (client) => (await client.query<{ code: string }>('SELECT code FROM kpis')).rows,
      );
      expect(rows).toEqual([{ code: 'orders' }]);
      // The one connection comes back to the pool after its COMMIT, the setting gone with the transaction.
      const { rows: after } = await single.query<{ tenant: string; open: boolean }>(
        "SELECT coalesce(current_setting('app.tenant_id', true), '') AS tenant, now() = statement_timestamp() AS open",
      );
      expect(after).toEqual([{ tenant: '', open: true }]);
      await expect(
        withTenantRead(single, 'acme', (client) => client.query(`UPDATE kpis SET name = 'x'`)),
      ).rejects.toThrow(/read-only transaction/);
      const { rows: names } = await withTenantRead(single, 'acme', (client) =>
        client.query('SELECT name FROM kpis'),
      );
      expect(names).not.toContainEqual({ name: 'x' });
      expect(single.totalCount).toBe(1);
    } finally {
      await single.end();
    }
  });

  it('sends the opening statement of a read with BEGIN and the tenant setting, under row-level security', async () => {
    const single = createPool(db.appUrl, 1, 'db-test-opening');
    try {
      const seen = await withTenantReadFrom<{ tenant_id: string; code: string }, unknown>(
        single,
        'acme',
        'SELECT tenant_id, code FROM kpis',
        async (client, rows) => ({
          rows,
          tenant: (await client.query<{ t: string }>("SELECT current_setting('app.tenant_id') AS t")).rows[0]!
            .t,
        }),
      );
      expect(seen).toEqual({ rows: [{ tenant_id: 'acme', code: 'orders' }], tenant: 'acme' });
      await expect(
        withTenantReadFrom(single, 'acme', 'SELECT no_such_column FROM kpis', () => Promise.resolve(1)),
      ).rejects.toThrow(/no_such_column/);
      // The failed opening rolled back and gave the one connection back.
      const { rows } = await single.query<{ n: number }>('SELECT count(*)::int AS n FROM kpis');
      expect(rows).toEqual([{ n: 0 }]);
    } finally {
      await single.end();
    }
  });

  it('accepts the application role and refuses one that can bypass it', async () => {
    await expect(assertRowLevelSecurity(app)).resolves.toBeUndefined();
    await expect(assertRowLevelSecurity(admin)).rejects.toThrow(/can bypass row-level security/);
    const { rows } = await app.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
      'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
    );
    expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
  });
});

describe('a connection lost in a transaction', () => {
  it('fails that transaction and leaves the process and the pool working', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const failed = withTenant(app, 'acme', async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // Between two statements (the writer awaits JetStream there), Postgres ends the connection.
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await client.query('SELECT 1');
      });
      await expect(failed).rejects.toThrow();
      // The pool discarded the dead client: the next transactions get a live one.
      for (let i = 0; i < 5; i++)
        expect(
          await withTenantRead(
            app,
            'acme',
            async (client) => (await client.query<{ one: number }>('SELECT 1 AS one')).rows,
          ),
        ).toEqual([{ one: 1 }]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});

describe('the event store', () => {
  it('stores an event once even when one batch holds it twice (JetStream may redeliver a copy)', async () => {
    const event: IncomingEvent = {
      eventId: 'twice-1',
      id: 'twice-1',
      type: 'USER_ACTION',
      name: 'page.view',
      source: 'web',
      timestamp: new Date('2026-11-23T10:00:00Z'),
      attributes: { path: '/' },
      metadata: null,
      version: null,
    };
    const stored = await withTenant(app, 'acme', (client) =>
      eventStore.insertNew(client, 'acme', [event, event]),
    );
    expect(stored.map((e) => e.id)).toEqual(['twice-1']);
    const again = await withTenant(app, 'acme', (client) => eventStore.insertNew(client, 'acme', [event]));
    expect(again).toEqual([]);
    const { rows } = await admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM events WHERE tenant_id = 'acme' AND event_id = 'twice-1'",
    );
    expect(Number(rows[0]!.n)).toBe(1);
  });
});
