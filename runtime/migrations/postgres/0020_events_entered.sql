-- KPIs read "reached a state" and "entered a state at" from the events
-- that enter their state (a create, or a move from another state). A
-- lead's many self-transitions and edits are not in this index, so a
-- funnel or an SLA stop probes about two entries per record instead of
-- every event of it (docs/kpis.md, docs/benchmarks.md "KPIs and reports").
CREATE INDEX events_entered ON events (tenant_id, to_state, record_id, at)
    WHERE from_state IS DISTINCT FROM to_state;
