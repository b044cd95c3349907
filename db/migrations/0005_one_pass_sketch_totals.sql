-- Rollup totals merge quantile sketches in one pass (subgraphs/metrics/rollupStore.ts, TOTALS_SQL), which
-- is about five times cheaper than this aggregate's pair-by-pair merge: it has no user left. sketch_merge
-- (two sketches) stays: the rollup upsert adds a batch's sketch to the stored one with it.
DROP AGGREGATE sketch_merge_agg(jsonb);
