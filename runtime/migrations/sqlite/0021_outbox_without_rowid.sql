-- The outbox keyed by (tenant_id, id) alone: WITHOUT ROWID, so a queued
-- message writes the table and its two indexes, not a rowid table plus a
-- separate primary-key index (one b-tree less in every transaction that
-- notifies). Ids stay per tenant; from now on a new row takes the
-- tenant's highest id + 1 in its INSERT (rows are never deleted), and
-- `tenants.next_outbox` is no longer advanced.
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
) WITHOUT ROWID;
INSERT INTO outbox_new (tenant_id, id, record_id, template, recipients, payload, created_at, attempts, next_attempt, delivered_at, last_error, failed_at, note, report_run_id)
SELECT tenant_id, id, record_id, template, recipients, payload, created_at, attempts, next_attempt, delivered_at, last_error, failed_at, note, report_run_id FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_record ON outbox (tenant_id, record_id);
CREATE INDEX outbox_pending ON outbox (tenant_id, next_attempt) WHERE delivered_at IS NULL;
