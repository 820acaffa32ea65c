#!/usr/bin/env bash
# The store benchmark's anchor (docs/benchmarks.md, "Durable stores"): what one
# lead transition does, written by hand in plain SQL and driven by pgbench.
# One transaction locks a record, changes its state and a field, appends an
# event row and re-arms a timer.
#   bash scripts/bench-pgbench.sh [clients=16] [seconds=20]
# Env: PGURL (default postgres://postgres@127.0.0.1:5432/postgres). Creates
# (and replaces) the tables pgb_records, pgb_events, pgb_timers there.
set -euo pipefail
url=${PGURL:-postgres://postgres@127.0.0.1:5432/postgres}
sql=$(mktemp --suffix=.sql)
trap 'rm -f "$sql"' EXIT
PGOPTIONS="-c client_min_messages=warning" psql "$url" -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DROP TABLE IF EXISTS pgb_records, pgb_events, pgb_timers;
CREATE TABLE pgb_records (tenant int, id bigint, state text, fields jsonb, revision int, updated_at timestamptz,
                          PRIMARY KEY (tenant, id));
CREATE TABLE pgb_events (tenant int, record bigint, seq bigserial, at timestamptz, transition text,
                         from_state text, to_state text, changes jsonb, PRIMARY KEY (tenant, record, seq));
CREATE TABLE pgb_timers (tenant int, record bigint, name text, due timestamptz, PRIMARY KEY (tenant, record, name));
CREATE INDEX ON pgb_timers (due);
INSERT INTO pgb_records
SELECT 1, n, 'assigned', jsonb_build_object('first_name', 'Lead ' || n, 'province', 'RM'), 0, now()
FROM generate_series(1, 100000) n;
VACUUM ANALYZE pgb_records;
SQL
cat >"$sql" <<'SQL'
\set id random(1, 100000)
BEGIN;
SELECT state, fields, revision FROM pgb_records WHERE tenant = 1 AND id = :id FOR UPDATE;
UPDATE pgb_records SET state = 'in_progress', fields = fields || '{"attempt":"2026-11-30T10:00:00Z"}',
       revision = revision + 1, updated_at = now() WHERE tenant = 1 AND id = :id;
INSERT INTO pgb_events (tenant, record, at, transition, from_state, to_state, changes)
VALUES (1, :id, now(), 'log_contact_attempt', 'assigned', 'in_progress', '{"attempt":"2026-11-30T10:00:00Z"}');
INSERT INTO pgb_timers VALUES (1, :id, 'lost_after_60d', now() + interval '60 days')
ON CONFLICT (tenant, record, name) DO UPDATE SET due = excluded.due;
COMMIT;
SQL
pgbench "$url" -n -c "${1:-16}" -j 2 -T "${2:-20}" -f "$sql" | grep -E '^(tps|latency)'
