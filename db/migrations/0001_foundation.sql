-- Foundation: the application role, KPI definitions and the raw event store, all tenant-scoped.
-- Services connect as pulsegraph_app, which owns nothing and cannot bypass row-level security;
-- every policy compares tenant_id with the per-transaction setting app.tenant_id.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pulsegraph_app') THEN
    CREATE ROLE pulsegraph_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL; -- another database of this cluster created it concurrently
END $$;

CREATE TABLE kpis (
  tenant_id       text        NOT NULL,
  code            text        NOT NULL,
  name            text        NOT NULL,
  description     text,
  unit            text,
  event_name      text,
  aggregation     text        NOT NULL
    CHECK (aggregation IN ('SUM','COUNT','AVG','MIN','MAX','DISTINCT_COUNT','P50','P95','P99','FORMULA')),
  value_field     text,
  formula         text,
  dimensions      text[]      NOT NULL DEFAULT '{}',
  refresh_seconds integer     NOT NULL DEFAULT 1 CHECK (refresh_seconds BETWEEN 1 AND 86400),
  time_window     text        NOT NULL DEFAULT '24h',
  version         integer     NOT NULL DEFAULT 1,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, code)
);

-- Raw events. Idempotency lives in event_ids (a plain table), so that events itself can be a
-- hypertable or partitioned by time without the event id having to carry the time column.
CREATE TABLE event_ids (
  tenant_id text        NOT NULL,
  event_id  text        NOT NULL,
  ts        timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, event_id)
);

CREATE TABLE events (
  tenant_id   text        NOT NULL,
  event_id    text        NOT NULL,
  ts          timestamptz NOT NULL,
  type        text        NOT NULL,
  name        text        NOT NULL,
  source      text        NOT NULL,
  attributes  jsonb       NOT NULL DEFAULT '{}',
  metadata    jsonb,
  version     text,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant_name_ts ON events (tenant_id, name, ts);

-- TimescaleDB where the server has it preloaded (the docker-compose image); BRIN on time otherwise.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
      EXECUTE $sql$SELECT create_hypertable('events', 'ts', chunk_time_interval => interval '1 day')$sql$;
      RETURN;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'timescaledb unusable (%), falling back to BRIN', SQLERRM;
    END;
  END IF;
  CREATE INDEX events_ts_brin ON events USING brin (ts);
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['kpis', 'event_ids', 'events'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
      'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO pulsegraph_app', t);
  END LOOP;
END $$;
