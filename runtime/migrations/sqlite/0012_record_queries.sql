-- Typed, indexed record queries (issue 17, docs/api.md "Lists and views").
-- Lists by state (a view's tabs), and an operator's own open records in id
-- order (keyset pages without a sort).
CREATE INDEX records_state ON records (tenant_id, state, id);
DROP INDEX records_open_assignee;
CREATE INDEX records_open_assignee ON records (tenant_id, assignee, id) WHERE is_final = 0 AND assignee IS NOT NULL;

-- The field indexes each tenant wants (fields declared `indexed = true` in a
-- published version); an index is dropped when no tenant wants it any more.
CREATE TABLE query_indexes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name      TEXT NOT NULL,
    field     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
