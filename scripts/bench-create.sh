#!/usr/bin/env bash
# Assignment cost with many open records (docs/benchmarks.md, "HTTP daemon"):
# POST /v1/records for ASLM (each create assigns a dealer by least load) from
# one connection, with OPEN (default 100000) open records already assigned in
# the tenant, on PostgreSQL. Prints wrk's latency figures.
#   bash scripts/bench-create.sh          # needs wrk, psql
# Env: LEADFLOW (binary), OPEN, DURATION (10s), PGURL.
set -euo pipefail
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }
cd "$(dirname "$0")/.."
BIN=${LEADFLOW:-target/release/leadflow}
OPEN=${OPEN:-100000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18093}
API=http://127.0.0.1:$PORT
DB=lf_bench_create
psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$BIN" serve --config examples/leadflow.toml --listen 127.0.0.1:$PORT --database-url "$PGURL/$DB" >/tmp/leadflow-bench-create.log 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true; psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
for _ in $(seq 100); do curl -fs $API/readyz >/dev/null && break; sleep 0.1; done
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
