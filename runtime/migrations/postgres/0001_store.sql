-- leadflow store, PostgreSQL dialect. Every primary and foreign key starts
-- with tenant_id (ready to distribute by tenant on Citus). Row-level security
-- keys every table on the session setting app.tenant_id; the application
-- runs as the non-superuser role leadflow_app so the policies apply.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leadflow_app') THEN
        CREATE ROLE leadflow_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created concurrently by another database's migration
END
$$;

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflow_versions (
    tenant_id text NOT NULL REFERENCES tenants (id),
    workflow  text NOT NULL,
    hash      text NOT NULL,
    source    text,
    loaded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, workflow, hash)
);

CREATE SEQUENCE record_ids;
CREATE SEQUENCE timer_seq;
CREATE SEQUENCE outbox_ids;

CREATE TABLE records (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    id         bigint NOT NULL,
    workflow   text NOT NULL,
    version    text NOT NULL,
    state      text NOT NULL,
    is_final   boolean NOT NULL,
    fields     jsonb NOT NULL,
    assignee   text,
    revision   bigint NOT NULL,
    created_at timestamptz NOT NULL,
    entered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX records_open_assignee ON records (tenant_id, assignee) WHERE NOT is_final AND assignee IS NOT NULL;
CREATE INDEX records_open_idle ON records (tenant_id, workflow, updated_at) WHERE NOT is_final;

CREATE TABLE links (
    tenant_id text NOT NULL,
    from_id   bigint NOT NULL,
    name      text NOT NULL,
    to_id     bigint NOT NULL,
    PRIMARY KEY (tenant_id, from_id, name, to_id),
    FOREIGN KEY (tenant_id, from_id) REFERENCES records (tenant_id, id),
    FOREIGN KEY (tenant_id, to_id) REFERENCES records (tenant_id, id)
);

CREATE TABLE history (
    tenant_id  text NOT NULL,
    record_id  bigint NOT NULL,
    revision   bigint NOT NULL,
    ord        int NOT NULL,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    transition text NOT NULL,
    field      text NOT NULL,
    old        jsonb NOT NULL,
    new        jsonb NOT NULL,
    PRIMARY KEY (tenant_id, record_id, revision, ord),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);

-- Timers and scheduled spawns (payload set) share one due queue. `seq`
-- identifies the arming: re-arming replaces it, so a stale claim never fires.
CREATE TABLE timers (
    tenant_id      text NOT NULL,
    record_id      bigint NOT NULL,
    timer          text NOT NULL,
    due            timestamptz NOT NULL,
    seq            bigint NOT NULL,
    armed_revision bigint NOT NULL,
    payload        jsonb,
    claim_owner    text,
    lease_until    timestamptz,
    fired_at       timestamptz,
    PRIMARY KEY (tenant_id, record_id, timer),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
CREATE INDEX timers_pending ON timers (tenant_id, due, seq) WHERE fired_at IS NULL;

CREATE TABLE outbox (
    tenant_id    text NOT NULL,
    id           bigint NOT NULL,
    record_id    bigint NOT NULL,
    template     text NOT NULL,
    recipients   jsonb NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    attempts     int NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    delivered_at timestamptz,
    last_error   text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
CREATE INDEX outbox_record ON outbox (tenant_id, record_id);
CREATE INDEX outbox_pending ON outbox (tenant_id, next_attempt) WHERE delivered_at IS NULL;

CREATE TABLE idempotency (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    key        text NOT NULL,
    response   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE actors (
    tenant_id text NOT NULL REFERENCES tenants (id),
    id        text NOT NULL,
    data      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Row-level security: a session sees and writes only its tenant's rows.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_setting('app.tenant_id', true))
    WITH CHECK (id = current_setting('app.tenant_id', true));
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workflow_versions', 'records', 'links', 'history', 'timers', 'outbox', 'idempotency', 'actors'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO leadflow_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO leadflow_app;
