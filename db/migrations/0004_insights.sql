-- Insights and alert rules. An insight is one episode: opened when a KPI deviates (an anomaly, a
-- week-over-week trend, a threshold crossed), updated in place while it lasts (version + 1 each time
-- it is published again), closed when the KPI recovers. The detector (subgraphs/insights/detector.ts)
-- writes them; each version is published on INSIGHTS after commit, published_version says how far.

CREATE TABLE insights (
  tenant_id         text        NOT NULL,
  id                uuid        NOT NULL DEFAULT gen_random_uuid(),
  -- a KPI code for KPI insights, or a free context
  context           text        NOT NULL,
  kind              text        NOT NULL CHECK (kind IN ('anomaly', 'trend', 'threshold')),
  -- which episode of the context it is: 'anomaly' and 'trend' (one open at a time each),
  -- 'threshold:<alert rule id>' (one open per rule)
  episode           text        NOT NULL,
  direction         text        CHECK (direction IN ('up', 'down')),
  kpi_code          text,
  severity          text        NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
  title             text        NOT NULL,
  detail            text,
  observed          double precision,
  expected          double precision,
  -- the observation the current version describes
  at                timestamptz NOT NULL,
  status            text        NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'CLOSED')),
  opened_at         timestamptz NOT NULL,
  closed_at         timestamptz,
  -- the detector's memory of the episode: its largest deviation, since when the KPI is back to
  -- normal, and when and with which value the current version was made
  peak_observed     double precision,
  peak_expected     double precision,
  peak_size         double precision,
  peak_summary      text,
  recovering_since  timestamptz,
  version_at        timestamptz NOT NULL,
  version_observed  double precision,
  version           integer     NOT NULL DEFAULT 1,
  published_version integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, id),
  CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX insights_one_open_episode ON insights (tenant_id, context, episode) WHERE status = 'OPEN';
CREATE INDEX insights_latest ON insights (tenant_id, context, opened_at DESC);
CREATE INDEX insights_of_kpi ON insights (tenant_id, kpi_code, opened_at DESC);
CREATE INDEX insights_unpublished ON insights (tenant_id, kpi_code) WHERE published_version < version;

-- Threshold alerts (defineAlert): one rule per KPI, condition and value; the severity is the rule's.
CREATE TABLE alert_rules (
  tenant_id  text             NOT NULL,
  id         uuid             NOT NULL DEFAULT gen_random_uuid(),
  kpi_code   text             NOT NULL,
  condition  text             NOT NULL CHECK (condition IN ('ABOVE', 'BELOW')),
  value      double precision NOT NULL,
  severity   text             NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
  created_at timestamptz      NOT NULL DEFAULT now(),
  updated_at timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, kpi_code, condition, value)
);

SELECT pulsegraph_isolate_tenants('insights');
SELECT pulsegraph_isolate_tenants('alert_rules');
