-- Work queues (issue 13): a record pulled from a queue is held by its
-- puller until `expires_at`, or until the record changes (its revision
-- moves past `revision`: any transition fired on it releases the lease).
-- One row per record: a record is never held by two pullers, whatever
-- queue they pull from; an expired or released row is overwritten by the
-- next claim. The number leaves 0016 to another change (sqlx applies
-- migrations by version; a gap is fine).
CREATE TABLE queue_leases (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    record_id  bigint NOT NULL,
    workflow   text NOT NULL,
    queue      text NOT NULL,
    actor      text NOT NULL,
    revision   bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, record_id),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id) ON DELETE CASCADE
);
-- "The record this actor holds in this queue" (a repeated pull).
CREATE INDEX queue_leases_actor ON queue_leases (tenant_id, workflow, queue, actor);

ALTER TABLE queue_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE queue_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON queue_leases
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON queue_leases TO leadflow_app;
