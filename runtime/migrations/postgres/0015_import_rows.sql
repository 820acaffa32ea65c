-- Bulk import (issue 17, section 3): one row per line of an import that
-- created or updated a record, written in the same transaction as that
-- record's create (or update), its history and its timers. A re-run of the
-- same file with the same import key skips the lines found here, so it
-- creates nothing twice, and a killed import resumes where it stopped.
CREATE TABLE import_rows (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    import_key text NOT NULL,
    line       bigint NOT NULL,
    record_id  bigint NOT NULL,
    outcome    text NOT NULL,
    PRIMARY KEY (tenant_id, import_key, line)
);

ALTER TABLE import_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_rows
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON import_rows TO leadflow_app;
