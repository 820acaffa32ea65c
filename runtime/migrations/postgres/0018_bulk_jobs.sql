-- Bulk jobs over HTTP (issue 17, sections 3 and 4): `POST /v1/imports` and
-- `POST /v1/bulk` answer with a job id at once and run in the background.
-- A job's row holds what `GET /v1/imports/{id}` and `GET /v1/bulk/{id}`
-- show (state, counts, report), so a restarted daemon still shows it. A
-- running job writes its counts at least every second (`updated_at` is
-- its heartbeat): one not heard of for 30 s died with its daemon and is
-- shown `interrupted` (an import re-posted with the same key resumes).
-- The partial unique index lets one job at a time run under an import key.
-- bulk_job_rejects: an import's reject report (CSV or NDJSON text), in
-- chunks as it is written.
CREATE SEQUENCE bulk_job_ids;
CREATE TABLE bulk_jobs (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    id          bigint NOT NULL DEFAULT nextval('bulk_job_ids'),
    kind        text NOT NULL CHECK (kind IN ('import', 'bulk')),
    workflow    text NOT NULL,
    import_key  text,
    state       text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
    -- The API key's name that posted it (only it, and admin keys, read it).
    created_by  text NOT NULL,
    params      jsonb NOT NULL,
    progress    jsonb NOT NULL,
    report      jsonb,
    error       jsonb,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX bulk_jobs_running_key ON bulk_jobs (tenant_id, import_key)
    WHERE state = 'running' AND import_key IS NOT NULL;

CREATE TABLE bulk_job_rejects (
    tenant_id text NOT NULL REFERENCES tenants (id),
    job_id    bigint NOT NULL,
    seq       int NOT NULL,
    data      text NOT NULL,
    PRIMARY KEY (tenant_id, job_id, seq)
);

ALTER TABLE bulk_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE bulk_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bulk_jobs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
ALTER TABLE bulk_job_rejects ENABLE ROW LEVEL SECURITY;
ALTER TABLE bulk_job_rejects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bulk_job_rejects
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON bulk_jobs TO leadflow_app;
GRANT SELECT, INSERT ON bulk_job_rejects TO leadflow_app;
GRANT USAGE ON SEQUENCE bulk_job_ids TO leadflow_app;
