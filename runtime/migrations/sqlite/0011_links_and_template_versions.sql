-- One-click action links that were used (see the PostgreSQL migration
-- 0013_links_and_template_versions.sql). Instants are microseconds since the epoch.
CREATE TABLE used_links (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id        TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    used_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- The versions of a tenant's message templates (see the PostgreSQL
-- migration 0013): files as a JSON array of {path, text}.
CREATE TABLE template_versions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    hash      TEXT NOT NULL,
    files     TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hash)
);
