-- Bulk import: the lines of an import that created or updated a record
-- (see the PostgreSQL migration 0014_import_rows.sql).
CREATE TABLE import_rows (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    import_key TEXT NOT NULL,
    line       INTEGER NOT NULL,
    record_id  INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, import_key, line)
);
