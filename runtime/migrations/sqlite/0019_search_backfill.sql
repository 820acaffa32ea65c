-- Full-text search words computed again in the background after a publish
-- changes a workflow's searched fields; see the PostgreSQL migration of the
-- same name. Records with `next_id < id <= upto` are not done yet and are
-- left out of searches meanwhile.
CREATE TABLE search_backfill (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    workflow  TEXT NOT NULL,
    next_id   INTEGER NOT NULL,
    upto      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, workflow)
) WITHOUT ROWID;
