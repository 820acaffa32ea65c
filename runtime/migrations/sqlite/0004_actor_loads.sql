-- Open records per assignee, kept current by triggers on records, so that
-- assignment reads each actor's load in O(actors) instead of counting the
-- tenant's open records on every create or transition that assigns (see
-- the PostgreSQL migration 0005 for the figures). The triggers see every
-- path that writes records; their WHEN clauses skip rows whose assignee
-- and open/final flag did not change.
CREATE TABLE actor_loads (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    actor        TEXT NOT NULL,
    open_records INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, actor)
);

INSERT INTO actor_loads (tenant_id, actor, open_records)
SELECT tenant_id, assignee, COUNT(*) FROM records
WHERE is_final = 0 AND assignee IS NOT NULL
GROUP BY tenant_id, assignee;

CREATE TRIGGER records_load_insert AFTER INSERT ON records
WHEN NEW.is_final = 0 AND NEW.assignee IS NOT NULL
BEGIN
    INSERT INTO actor_loads (tenant_id, actor, open_records) VALUES (NEW.tenant_id, NEW.assignee, 1)
    ON CONFLICT (tenant_id, actor) DO UPDATE SET open_records = open_records + 1;
END;

CREATE TRIGGER records_load_update AFTER UPDATE OF assignee, is_final ON records
WHEN OLD.assignee IS NOT NEW.assignee OR OLD.is_final IS NOT NEW.is_final
BEGIN
    UPDATE actor_loads SET open_records = open_records - 1
    WHERE OLD.is_final = 0 AND OLD.assignee IS NOT NULL
      AND tenant_id = OLD.tenant_id AND actor = OLD.assignee;
    INSERT INTO actor_loads (tenant_id, actor, open_records)
    SELECT NEW.tenant_id, NEW.assignee, 1 WHERE NEW.is_final = 0 AND NEW.assignee IS NOT NULL
    ON CONFLICT (tenant_id, actor) DO UPDATE SET open_records = open_records + 1;
END;

CREATE TRIGGER records_load_delete AFTER DELETE ON records
WHEN OLD.is_final = 0 AND OLD.assignee IS NOT NULL
BEGIN
    UPDATE actor_loads SET open_records = open_records - 1
    WHERE tenant_id = OLD.tenant_id AND actor = OLD.assignee;
END;
