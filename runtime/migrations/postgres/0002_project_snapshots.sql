-- Project snapshots: every file (workflows, rules, calendars) a tenant's
-- workflow versions were loaded from, stored once per content (hash =
-- SHA-256 of all files), so a store rebuilds older versions when it opens
-- and records keep running on the version they were created with.

CREATE TABLE project_snapshots (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    hash       text NOT NULL,
    files      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, hash)
);

-- NULL for versions registered without their files (before this migration,
-- or by a tool that had none): those are not rebuilt after a restart.
ALTER TABLE workflow_versions ADD COLUMN snapshot text;
ALTER TABLE workflow_versions ADD CONSTRAINT workflow_versions_snapshot_fkey
    FOREIGN KEY (tenant_id, snapshot) REFERENCES project_snapshots (tenant_id, hash);

ALTER TABLE project_snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON project_snapshots
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON project_snapshots TO leadflow_app;
