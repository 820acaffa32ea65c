-- Full-text search words computed again after a publish changes a
-- workflow's searched fields, in the background (docs/api.md "Full-text
-- search"): one row per workflow still to do, the records with
-- `next_id < id <= upto` not done yet. The daemon serves meanwhile; a
-- search leaves those records out (their words are the old fields'), so it
-- never answers from words the new version would not give, e.g. a field
-- that became `pii`. A restart resumes at `next_id`.
CREATE TABLE search_backfill (
    tenant_id text NOT NULL REFERENCES tenants (id),
    workflow  text NOT NULL,
    next_id   bigint NOT NULL,
    upto      bigint NOT NULL,
    PRIMARY KEY (tenant_id, workflow)
);
ALTER TABLE search_backfill ENABLE ROW LEVEL SECURITY;
ALTER TABLE search_backfill FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON search_backfill
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON search_backfill TO leadflow_app;
