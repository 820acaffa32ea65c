-- Open records per assignee, kept current by triggers on records, so that
-- assignment reads each actor's load in O(actors) instead of counting the
-- tenant's open records (a GROUP BY that took ~14 ms at 100,000 open
-- records, on every create or transition that assigns). The triggers see
-- every path that writes records (transitions, timers, bulk operations,
-- `leadflow migrate`); a WHEN clause keeps them off the rows whose assignee
-- and open/final flag did not change.
CREATE TABLE actor_loads (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    actor        text NOT NULL,
    open_records bigint NOT NULL,
    PRIMARY KEY (tenant_id, actor)
);

INSERT INTO actor_loads (tenant_id, actor, open_records)
SELECT tenant_id, assignee, count(*) FROM records
WHERE NOT is_final AND assignee IS NOT NULL
GROUP BY tenant_id, assignee;

CREATE FUNCTION leadflow_count_open_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF NOT OLD.is_final AND OLD.assignee IS NOT NULL THEN
            UPDATE actor_loads SET open_records = open_records - 1
            WHERE tenant_id = OLD.tenant_id AND actor = OLD.assignee;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NOT NEW.is_final AND NEW.assignee IS NOT NULL THEN
            INSERT INTO actor_loads (tenant_id, actor, open_records)
            VALUES (NEW.tenant_id, NEW.assignee, 1)
            ON CONFLICT (tenant_id, actor) DO UPDATE SET open_records = actor_loads.open_records + 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER records_load_insert AFTER INSERT ON records FOR EACH ROW
    WHEN (NOT NEW.is_final AND NEW.assignee IS NOT NULL)
    EXECUTE FUNCTION leadflow_count_open_records();
CREATE TRIGGER records_load_update AFTER UPDATE OF assignee, is_final ON records FOR EACH ROW
    WHEN (OLD.assignee IS DISTINCT FROM NEW.assignee OR OLD.is_final IS DISTINCT FROM NEW.is_final)
    EXECUTE FUNCTION leadflow_count_open_records();
CREATE TRIGGER records_load_delete AFTER DELETE ON records FOR EACH ROW
    WHEN (NOT OLD.is_final AND OLD.assignee IS NOT NULL)
    EXECUTE FUNCTION leadflow_count_open_records();

ALTER TABLE actor_loads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON actor_loads
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON actor_loads TO leadflow_app;
