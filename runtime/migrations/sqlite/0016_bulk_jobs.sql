-- Bulk jobs over HTTP (see the PostgreSQL migration 0018_bulk_jobs.sql).
-- Instants are microseconds since the epoch; JSON columns are text.
CREATE TABLE bulk_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    kind        TEXT NOT NULL CHECK (kind IN ('import', 'bulk')),
    workflow    TEXT NOT NULL,
    import_key  TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
    created_by  TEXT NOT NULL,
    params      TEXT NOT NULL,
    progress    TEXT NOT NULL,
    report      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE UNIQUE INDEX bulk_jobs_running_key ON bulk_jobs (tenant_id, import_key)
    WHERE state = 'running' AND import_key IS NOT NULL;

CREATE TABLE bulk_job_rejects (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    job_id    INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, job_id, seq)
);
