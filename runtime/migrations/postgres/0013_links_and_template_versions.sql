-- One-click action links that were used (docs/notifications.md, "Action
-- links"): a link's id (the first 16 bytes of the SHA-256 of its claims,
-- hex) is written when its transition fired, so the same link is refused
-- the second time with E_LINK_USED. Rows are small and bounded by the
-- transitions fired through links.
CREATE TABLE used_links (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id        text NOT NULL,
    record_id bigint NOT NULL,
    used_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE used_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE used_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON used_links
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON used_links TO leadflow_app;

-- The versions of a tenant's message templates (docs/notifications.md,
-- "Template versions"): every file of templates/ (path and text), keyed by
-- the SHA-256 of them all. A message is queued under the version in force
-- (its payload's `templates`) and rendered with it, after a reload or a
-- restart too. Stored once per content; never changed.
CREATE TABLE template_versions (
    tenant_id text NOT NULL REFERENCES tenants (id),
    hash      text NOT NULL,
    files     jsonb NOT NULL,
    stored_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, hash)
);

ALTER TABLE template_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE template_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON template_versions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON template_versions TO leadflow_app;
