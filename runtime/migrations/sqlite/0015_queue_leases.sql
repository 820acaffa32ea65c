-- Work queues: the record a puller holds (see the PostgreSQL migration
-- 0017_queue_leases.sql). Times in microseconds since the epoch, as
-- `records`. 0014 is left to another change (a gap is fine for sqlx).
CREATE TABLE queue_leases (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    record_id  INTEGER NOT NULL,
    workflow   TEXT NOT NULL,
    queue      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, record_id),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX queue_leases_actor ON queue_leases (tenant_id, workflow, queue, actor);
