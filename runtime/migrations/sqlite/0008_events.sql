-- One event per committed change of a record (see the PostgreSQL
-- migration 0010_events.sql and docs/store.md, "Events"). Instants are
-- microseconds since the epoch, JSON is TEXT, as elsewhere in this schema.
-- WITHOUT ROWID: the primary key is the table (one b-tree less to write
-- per transition), and every secondary index carries it, so `events_at`
-- orders by (at, record_id, revision) as the audit query pages.
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
) WITHOUT ROWID;
CREATE INDEX events_at ON events (tenant_id, at);
CREATE INDEX events_transition ON events (tenant_id, workflow, transition, at);

-- How the store writes an event and its field changes: one INSERT into
-- this view (`changes` a JSON array of [field, old, new], `field_actor`
-- and `label` the actor and transition label of the field rows), which
-- the trigger turns into the event row and one `history` row per change.
-- One statement instead of one per row: each statement is a round trip
-- to the connection's worker thread, which costs more than the rows.
CREATE VIEW event_writes AS
SELECT tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee, input,
       NULL AS field_actor, NULL AS label, NULL AS changes
FROM events;

CREATE TRIGGER event_writes_insert INSTEAD OF INSERT ON event_writes
BEGIN
    INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee, input)
    VALUES (NEW.tenant_id, NEW.record_id, NEW.revision, NEW.workflow, NEW.at, NEW.kind, NEW.actor, NEW.transition,
            NEW.from_state, NEW.to_state, NEW.assignee, NEW.input);
    INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new)
    SELECT NEW.tenant_id, NEW.record_id, NEW.revision, c.key, NEW.at, NEW.field_actor, NEW.label,
           c.value ->> '$[0]', c.value -> '$[1]', c.value -> '$[2]'
    FROM json_each(coalesce(NEW.changes, '[]')) c;
END;

-- Field rows written before events existed: one legacy event per
-- (record, revision), `transition` the label the rows were written with.
INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition)
SELECT h.tenant_id, h.record_id, h.revision, min(r.workflow), min(h.at), 'legacy', min(h.actor), min(h.transition)
FROM history h JOIN records r ON r.tenant_id = h.tenant_id AND r.id = h.record_id
GROUP BY h.tenant_id, h.record_id, h.revision;
