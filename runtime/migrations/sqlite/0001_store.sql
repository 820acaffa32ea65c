-- leadflow store, SQLite dialect. Instants are INTEGER microseconds since the
-- Unix epoch (exact ordering, cheap comparisons). JSON is TEXT.
-- Every key starts with tenant_id, as in the PostgreSQL schema.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    next_record INTEGER NOT NULL DEFAULT 0,
    next_seq    INTEGER NOT NULL DEFAULT 0,
    next_outbox INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE workflow_versions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    workflow  TEXT NOT NULL,
    hash      TEXT NOT NULL,
    source    TEXT,
    loaded_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, workflow, hash)
);

CREATE TABLE records (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    id         INTEGER NOT NULL,
    workflow   TEXT NOT NULL,
    version    TEXT NOT NULL,
    state      TEXT NOT NULL,
    is_final   INTEGER NOT NULL,
    fields     TEXT NOT NULL,
    assignee   TEXT,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX records_open_assignee ON records (tenant_id, assignee) WHERE is_final = 0 AND assignee IS NOT NULL;
CREATE INDEX records_open_idle ON records (tenant_id, workflow, updated_at) WHERE is_final = 0;

CREATE TABLE links (
    tenant_id TEXT NOT NULL,
    from_id   INTEGER NOT NULL,
    name      TEXT NOT NULL,
    to_id     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, from_id, name, to_id),
    FOREIGN KEY (tenant_id, from_id) REFERENCES records (tenant_id, id),
    FOREIGN KEY (tenant_id, to_id) REFERENCES records (tenant_id, id)
);

CREATE TABLE history (
    tenant_id  TEXT NOT NULL,
    record_id  INTEGER NOT NULL,
    revision   INTEGER NOT NULL,
    ord        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    transition TEXT NOT NULL,
    field      TEXT NOT NULL,
    old        TEXT NOT NULL,
    new        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, record_id, revision, ord),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);

-- Timers and scheduled spawns (payload set) share one due queue. `seq`
-- identifies the arming: re-arming replaces it, so a stale claim never fires.
CREATE TABLE timers (
    tenant_id      TEXT NOT NULL,
    record_id      INTEGER NOT NULL,
    timer          TEXT NOT NULL,
    due            INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    armed_revision INTEGER NOT NULL,
    payload        TEXT,
    claim_owner    TEXT,
    lease_until    INTEGER,
    fired_at       INTEGER,
    PRIMARY KEY (tenant_id, record_id, timer),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
CREATE INDEX timers_pending ON timers (tenant_id, due, seq) WHERE fired_at IS NULL;

CREATE TABLE outbox (
    tenant_id    TEXT NOT NULL,
    id           INTEGER NOT NULL,
    record_id    INTEGER NOT NULL,
    template     TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error   TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
CREATE INDEX outbox_record ON outbox (tenant_id, record_id);
CREATE INDEX outbox_pending ON outbox (tenant_id, next_attempt) WHERE delivered_at IS NULL;

CREATE TABLE idempotency (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    key        TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE actors (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id        TEXT NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
