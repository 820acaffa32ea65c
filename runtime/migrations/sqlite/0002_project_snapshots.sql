-- Project snapshots: every file (workflows, rules, calendars) a tenant's
-- workflow versions were loaded from, stored once per content (hash =
-- SHA-256 of all files), so a store rebuilds older versions when it opens
-- and records keep running on the version they were created with.
-- `files` is JSON text; `created_at` integer microseconds.

CREATE TABLE project_snapshots (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    hash       TEXT NOT NULL,
    files      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hash)
);

-- NULL for versions registered without their files (before this migration,
-- or by a tool that had none): those are not rebuilt after a restart.
-- (SQLite cannot add a composite foreign key to an existing table; the
-- stores only ever write a hash they inserted in the same transaction.)
ALTER TABLE workflow_versions ADD COLUMN snapshot TEXT;
