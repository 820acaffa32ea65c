-- Scheduled reports (issue 11, point 4; docs/kpis.md, "Schedules").
--
-- report_schedules: when the store first saw each scheduled report of a
-- tenant: runs are due from then on (a report added today does not run for
-- every past quarter).
--
-- report_runs: one row per (report, scheduled instant), created before it
-- runs, so that two daemons agree on what is due (the unique key) and a
-- run is claimed like a timer (claim_owner, lease_until, FOR UPDATE SKIP
-- LOCKED). A run is `pending` until a daemon finishes it: `done` with its
-- result and messages in the same transaction, or `failed` with its error,
-- retried at next_attempt. A daemon killed mid-run leaves the row pending
-- with a lease that ends; another daemon (or the restarted one) runs it.
CREATE TABLE report_schedules (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    workflow   text NOT NULL,
    report     text NOT NULL,
    since      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, workflow, report)
);

CREATE SEQUENCE report_run_ids;
CREATE TABLE report_runs (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    id           bigint NOT NULL DEFAULT nextval('report_run_ids'),
    workflow     text NOT NULL,
    report       text NOT NULL,
    -- The scheduled instant (what the run is for).
    slot         timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts     int NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    claim_owner  text,
    lease_until  timestamptz,
    started_at   timestamptz,
    finished_at  timestamptz,
    error        text,
    -- The period covered (`2025-Q1`), NULL for the whole history.
    period       text,
    result       jsonb,
    messages     int NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, workflow, report, slot)
);
CREATE INDEX report_runs_due ON report_runs (tenant_id, next_attempt) WHERE status <> 'done';

ALTER TABLE report_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE report_schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON report_schedules
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE report_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE report_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON report_runs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON report_schedules TO leadflow_app;
GRANT SELECT, INSERT, UPDATE ON report_runs TO leadflow_app;
GRANT USAGE ON SEQUENCE report_run_ids TO leadflow_app;

-- A report run's messages are not about one record: record_id is NULL and
-- report_run_id names the run.
ALTER TABLE outbox ALTER COLUMN record_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN report_run_id bigint;
