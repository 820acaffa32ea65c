#!/usr/bin/env bash
# Assignment cost with many open records (docs/benchmarks.md, "HTTP daemon"):
# POST /v1/records for ASLM (each create assigns a dealer by least load) from
# one connection, with OPEN (default 100000) open records already assigned in
# the tenant, on PostgreSQL. Prints wrk's latency figures.
#   bash scripts/bench-create.sh          # needs wrk, psql
# Env: LEADFLOW (binary), OPEN, DURATION (10s), PGURL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LEADFLOW:-target/release/leadflow}
OPEN=${OPEN:-100000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18093}
DB=lf_bench_create
. scripts/bench-lib.sh
start_daemon /tmp/leadflow-bench-create.log
# Open records written straight into the table (as a bulk import would),
# half of them assigned to the Rome dealer.
psql "$PGURL/$DB" -qAtc "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
  SELECT 'aslm', 1000000 + g, 'aslm', 'v', 'assigned', false, '{}', CASE WHEN g % 2 = 0 THEN 'dealer-rm' ELSE 'dealer-x' || (g % 20) END, 1, now(), now(), now()
  FROM generate_series(1, $OPEN) g" -c "VACUUM ANALYZE"
LUA=$(mktemp --suffix=.lua)
cat > "$LUA" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer aslm-admin"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"workflow":"aslm","fields":{"first_name":"Bench","province":"RM"}}'
LUA
echo "POST /v1/records (ASLM, assigns a dealer), one connection, $OPEN open records, ${DURATION:-10s}:"
wrk -t1 -c1 -d"${DURATION:-10s}" --latency -s "$LUA" $API/v1/records
