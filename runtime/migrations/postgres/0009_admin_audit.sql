-- Every request by an admin key that changes something (POST, PUT, PATCH,
-- DELETE), with its outcome: who (the key's name, never the key), when,
-- what (method and path), the status answered and the record it touched.
-- Read with GET /v1/audit (docs/security.md). Append-only for the daemon:
-- leadflow_app may insert and read, not change or delete.
CREATE TABLE admin_audit (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id        bigint GENERATED ALWAYS AS IDENTITY,
    at        timestamptz NOT NULL,
    key_name  text NOT NULL,
    method    text NOT NULL,
    path      text NOT NULL,
    status    integer NOT NULL,
    record_id bigint,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE admin_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE admin_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON admin_audit
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON admin_audit TO leadflow_app;
GRANT USAGE ON SEQUENCE admin_audit_id_seq TO leadflow_app;
