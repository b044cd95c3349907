-- Rollups: per KPI, per time bucket (1m base; 1h and 1d derived in the same transaction), per
-- combination of the KPI's dimension values. Maintained incrementally by the writer together with the
-- events they come from, so a crash never leaves one without the other.

-- Merges two quantile sketches (subgraphs/metrics/sketch.ts): bucket -> count objects, counts added.
CREATE FUNCTION sketch_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN a IS NULL THEN b
    WHEN b IS NULL THEN a
    ELSE (SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
            FROM (SELECT key, sum(value::numeric) AS total
                    FROM (SELECT key, value FROM jsonb_each_text(a)
                          UNION ALL SELECT key, value FROM jsonb_each_text(b)) parts
                   GROUP BY key) merged)
  END
$$;

CREATE AGGREGATE sketch_merge_agg(jsonb) (SFUNC = sketch_merge, STYPE = jsonb);

CREATE TABLE rollups (
  tenant_id  text        NOT NULL,
  kpi_code   text        NOT NULL,
  resolution text        NOT NULL CHECK (resolution IN ('1m', '1h', '1d')),
  bucket     timestamptz NOT NULL,
  dims       jsonb       NOT NULL DEFAULT '{}',
  count      bigint      NOT NULL,
  sum        numeric     NOT NULL DEFAULT 0,
  min        numeric,
  max        numeric,
  sketch     jsonb,
  PRIMARY KEY (tenant_id, kpi_code, resolution, bucket, dims)
);

-- Exact distinct values per minute bucket, for DISTINCT_COUNT KPIs.
CREATE TABLE rollup_distinct (
  tenant_id text        NOT NULL,
  kpi_code  text        NOT NULL,
  bucket    timestamptz NOT NULL,
  dims      jsonb       NOT NULL DEFAULT '{}',
  value     text        NOT NULL,
  PRIMARY KEY (tenant_id, kpi_code, bucket, dims, value)
);

-- Puts a table under the tenant isolation of 0001 (forced RLS on app.tenant_id, DML for pulsegraph_app).
-- Every later migration calls this for each table it creates.
CREATE FUNCTION pulsegraph_isolate_tenants(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
  EXECUTE format(
    'CREATE POLICY tenant_isolation ON %s USING (tenant_id = current_setting(''app.tenant_id'', true)) '
    'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO pulsegraph_app', t);
END $$;
REVOKE ALL ON FUNCTION pulsegraph_isolate_tenants(regclass) FROM PUBLIC;

SELECT pulsegraph_isolate_tenants('rollups');
SELECT pulsegraph_isolate_tenants('rollup_distinct');
GRANT EXECUTE ON FUNCTION sketch_merge(jsonb, jsonb) TO pulsegraph_app;
GRANT EXECUTE ON FUNCTION sketch_merge_agg(jsonb) TO pulsegraph_app;

-- The tenants that have KPIs, for platform workers (the KPI calculator's periodic sweep). Row-level
-- security hides other tenants' rows from pulsegraph_app; this function reveals their ids and nothing else.
CREATE FUNCTION platform_tenants() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT DISTINCT tenant_id FROM kpis
$$;
REVOKE ALL ON FUNCTION platform_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_tenants() TO pulsegraph_app;
