-- Scheduled reports (see the PostgreSQL migration 0012_report_runs.sql).
-- Instants are microseconds since the epoch. One writer at a time
-- (BEGIN IMMEDIATE) makes a claim exclusive; the lease covers a daemon
-- that died mid-run.
CREATE TABLE report_schedules (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    workflow   TEXT NOT NULL,
    report     TEXT NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, workflow, report)
);

CREATE TABLE report_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    workflow     TEXT NOT NULL,
    report       TEXT NOT NULL,
    slot         INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    claim_owner  TEXT,
    lease_until  INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    error        TEXT,
    period       TEXT,
    result       TEXT,
    messages     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, workflow, report, slot)
);
CREATE INDEX report_runs_due ON report_runs (tenant_id, next_attempt) WHERE status <> 'done';

-- A report run's messages are not about one record: record_id becomes
-- nullable (SQLite rebuilds the table for that) and report_run_id names
-- the run.
CREATE TABLE outbox_new (
    tenant_id     TEXT NOT NULL,
    id            INTEGER NOT NULL,
    record_id     INTEGER,
    template      TEXT NOT NULL,
    recipients    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL,
    delivered_at  INTEGER,
    last_error    TEXT,
    failed_at     INTEGER,
    note          TEXT,
    report_run_id INTEGER,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
INSERT INTO outbox_new (tenant_id, id, record_id, template, recipients, payload, created_at, attempts, next_attempt, delivered_at, last_error, failed_at, note)
SELECT tenant_id, id, record_id, template, recipients, payload, created_at, attempts, next_attempt, delivered_at, last_error, failed_at, note FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_record ON outbox (tenant_id, record_id);
CREATE INDEX outbox_pending ON outbox (tenant_id, next_attempt) WHERE delivered_at IS NULL;
