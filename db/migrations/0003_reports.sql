-- Reports: definitions, their generations (runs), and the scheduled ones a scheduler may see.
-- A generation's status, progress and output location live here, so a late subscriber to
-- reportProgress and the download endpoint read the last state from Postgres.

CREATE TABLE reports (
  tenant_id         text        NOT NULL,
  id                uuid        NOT NULL DEFAULT gen_random_uuid(),
  name              text        NOT NULL,
  type              text        NOT NULL CHECK (type IN ('DASHBOARD','SCHEDULED','ADHOC','SYSTEM')),
  -- { metrics: [kpi code], dimensions: [name], filters: [{field, operator, value}],
  --   timeRange: { start, end, interval } } as validated by the reports subgraph
  config            jsonb       NOT NULL,
  schedule_cron     text,
  schedule_timezone text,
  format            text        NOT NULL DEFAULT 'CSV' CHECK (format IN ('CSV','JSON')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  CHECK ((schedule_cron IS NULL) = (schedule_timezone IS NULL))
);

CREATE TABLE report_generations (
  tenant_id   text        NOT NULL,
  id          uuid        NOT NULL DEFAULT gen_random_uuid(),
  report_id   uuid        NOT NULL,
  status      text        NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED','RUNNING','COMPLETED','FAILED')),
  progress    double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
  message     text,
  -- 'manual', or 'schedule:<tick as ISO-8601 UTC>': one generation per scheduled tick, whoever schedules it
  trigger     text        NOT NULL DEFAULT 'manual',
  format      text        NOT NULL CHECK (format IN ('CSV','JSON')),
  attempts    integer     NOT NULL DEFAULT 0,
  row_count   bigint,
  byte_count  bigint,
  -- the output file, relative to DATA_DIR/reports
  file_path   text,
  error       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, report_id) REFERENCES reports (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX report_generations_one_per_tick
  ON report_generations (tenant_id, report_id, trigger) WHERE trigger <> 'manual';
CREATE INDEX report_generations_latest ON report_generations (tenant_id, report_id, created_at DESC);

SELECT pulsegraph_isolate_tenants('reports');
SELECT pulsegraph_isolate_tenants('report_generations');

-- Every tenant's scheduled reports, for the scheduler: ids and schedules only, nothing else.
CREATE FUNCTION platform_scheduled_reports()
RETURNS TABLE (tenant_id text, report_id uuid, cron text, timezone text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT tenant_id, id, schedule_cron, schedule_timezone FROM reports WHERE schedule_cron IS NOT NULL
$$;
REVOKE ALL ON FUNCTION platform_scheduled_reports() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_scheduled_reports() TO pulsegraph_app;
