-- One event per committed change of a record (see the PostgreSQL
-- migration 0010_events.sql and docs/store.md, "Events"). Instants are
-- microseconds since the epoch, JSON is TEXT, as elsewhere in this schema.
CREATE TABLE events (
    tenant_id  TEXT NOT NULL,
    record_id  INTEGER NOT NULL,
    revision   INTEGER NOT NULL,
    workflow   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('create', 'spawn', 'transition', 'bulk', 'timer', 'migrate', 'legacy')),
    actor      TEXT NOT NULL,
    transition TEXT,
    from_state TEXT,
    to_state   TEXT,
    assignee   TEXT,
    input      TEXT,
    PRIMARY KEY (tenant_id, record_id, revision)
);
CREATE INDEX events_at ON events (tenant_id, at, record_id, revision);
CREATE INDEX events_transition ON events (tenant_id, workflow, transition, at);

-- Field rows written before events existed: one legacy event per
-- (record, revision), `transition` the label the rows were written with.
INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition)
SELECT h.tenant_id, h.record_id, h.revision, min(r.workflow), min(h.at), 'legacy', min(h.actor), min(h.transition)
FROM history h JOIN records r ON r.tenant_id = h.tenant_id AND r.id = h.record_id
GROUP BY h.tenant_id, h.record_id, h.revision;
