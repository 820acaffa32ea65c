-- Every request by an admin key that changes something, with its outcome
-- (see the PostgreSQL migration 0009_admin_audit.sql). Instants are
-- microseconds since the epoch, as elsewhere in this schema.
CREATE TABLE admin_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    at        INTEGER NOT NULL,
    key_name  TEXT NOT NULL,
    method    TEXT NOT NULL,
    path      TEXT NOT NULL,
    status    INTEGER NOT NULL,
    record_id INTEGER
);
CREATE INDEX admin_audit_tenant ON admin_audit (tenant_id, id);
