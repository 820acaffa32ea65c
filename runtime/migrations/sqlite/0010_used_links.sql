-- One-click action links that were used (see the PostgreSQL migration
-- 0012_used_links.sql). Instants are microseconds since the epoch.
CREATE TABLE used_links (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id        TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    used_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
