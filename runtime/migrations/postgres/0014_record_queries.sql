-- Typed, indexed record queries (issue 17, docs/api.md "Lists and views").
-- A field is compared and sorted by the value of its declared type, read
-- from the JSON by these functions; a value of another type (a field
-- retyped between workflow versions) reads as NULL, as a missing one.
-- They are IMMUTABLE so that expression indexes can use them: the engine
-- stores instants in RFC 3339 with an offset and dates as YYYY-MM-DD, so the
-- casts below do not depend on the session's TimeZone or DateStyle.
CREATE FUNCTION leadflow_text(v jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' END $$;

CREATE FUNCTION leadflow_num(v jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE jsonb_typeof(v)
        WHEN 'number' THEN (v #>> '{}')::numeric
        WHEN 'string' THEN CASE WHEN (v #>> '{}') ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$'
                                THEN (v #>> '{}')::numeric END
    END $$;

CREATE FUNCTION leadflow_bool(v jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'boolean' THEN (v #>> '{}')::boolean END $$;

CREATE FUNCTION leadflow_date(v jsonb) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                THEN to_date(v #>> '{}', 'YYYY-MM-DD') END $$;

CREATE FUNCTION leadflow_ts(v jsonb) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'string'
                 AND (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
                THEN (v #>> '{}')::timestamptz END $$;

-- Lists by state (a view's tabs), and an operator's own open records in id
-- order (keyset pages without a sort).
CREATE INDEX records_state ON records (tenant_id, state, id);
DROP INDEX records_open_assignee;
CREATE INDEX records_open_assignee ON records (tenant_id, assignee, id) WHERE NOT is_final AND assignee IS NOT NULL;

-- The field indexes each tenant wants (fields declared `indexed = true` in a
-- published version). The records table is shared by the tenants of a
-- database, and so are its indexes: an index is dropped when no tenant wants
-- it any more. Written by the login role that builds the indexes (owner or
-- superuser); holds index and field names only, no record data.
CREATE TABLE query_indexes (
    tenant_id text NOT NULL REFERENCES tenants (id),
    name      text NOT NULL,
    field     text NOT NULL,
    kind      text NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Row-level security like every table: the daemon's sessions read their
-- tenant's rows only; the index builder (a member of the table's owner role)
-- sees every tenant's rows, to drop an index only when no tenant wants it.
ALTER TABLE query_indexes ENABLE ROW LEVEL SECURITY;
ALTER TABLE query_indexes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON query_indexes
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY index_builder ON query_indexes
    USING (pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'query_indexes'::regclass), 'MEMBER'))
    WITH CHECK (pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'query_indexes'::regclass), 'MEMBER'));
GRANT SELECT ON query_indexes TO leadflow_app;
