-- Citus (docs/scaling.md) refuses a subquery in a policy of a distributed
-- table, and `index_builder` on query_indexes had one (the table owner's
-- oid). The same test, moved into a function; plpgsql, so the planner never
-- inlines it back into a subquery.
CREATE FUNCTION leadflow_builds_indexes() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN pg_has_role(current_user,
        (SELECT relowner FROM pg_class WHERE oid = 'query_indexes'::regclass), 'MEMBER');
END
$$;
DROP POLICY index_builder ON query_indexes;
CREATE POLICY index_builder ON query_indexes
    USING (leadflow_builds_indexes())
    WITH CHECK (leadflow_builds_indexes());
