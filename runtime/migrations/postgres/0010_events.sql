-- One event per committed change of a record (docs/store.md, "Events"):
-- every create, spawn, transition, bulk operation, timer firing and
-- version move, for the revision it produced. Its field changes are the
-- `history` rows of the same record and revision. Append-only for the
-- daemon: leadflow_app may insert and read, not change or delete.
--
-- No foreign key to records: the store writes an event in the statement
-- that writes its record's row (the record is locked by then), and a
-- foreign key check per event would cost every transition a lookup.
CREATE TABLE events (
    tenant_id  text NOT NULL,
    record_id  bigint NOT NULL,
    revision   bigint NOT NULL,
    workflow   text NOT NULL,
    at         timestamptz NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('create', 'spawn', 'transition', 'bulk', 'timer', 'migrate', 'legacy')),
    -- The actor id, `timer:<name>`, `system` or `migrate`.
    actor      text NOT NULL,
    transition text,
    from_state text,
    to_state   text,
    -- The record's assignee after the event.
    assignee   text,
    -- The caller's input (field -> value), NULL without input.
    input      jsonb,
    PRIMARY KEY (tenant_id, record_id, revision)
);
-- The audit query (GET /v1/history) pages in (at, record_id, revision)
-- order; KPIs and reports select a workflow's transitions in a period.
CREATE INDEX events_at ON events (tenant_id, at, record_id, revision);
CREATE INDEX events_transition ON events (tenant_id, workflow, transition, at);

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON events TO leadflow_app;

-- Field rows written before events existed become one legacy event per
-- (record, revision): at and actor of its rows, `transition` the label
-- they were written with (a transition, `create`, `timer:<name>` or
-- `migrate`), from, to and assignee unknown. Row-level security is forced
-- for the owner too (0008) and every tenant's rows are read here, so the
-- owner lifts it from the tables involved for this statement and forces
-- it again before the migration commits (the ALTERs hold their tables
-- locked until then: no other session sees them lifted). A superuser
-- bypasses RLS anyway.
ALTER TABLE history NO FORCE ROW LEVEL SECURITY;
ALTER TABLE records NO FORCE ROW LEVEL SECURITY;
INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition)
SELECT h.tenant_id, h.record_id, h.revision, min(r.workflow), min(h.at), 'legacy', min(h.actor), min(h.transition)
FROM history h JOIN records r ON r.tenant_id = h.tenant_id AND r.id = h.record_id
GROUP BY h.tenant_id, h.record_id, h.revision;
ALTER TABLE history FORCE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
