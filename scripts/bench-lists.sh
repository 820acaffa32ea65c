#!/usr/bin/env bash
# List and view benchmark (docs/benchmarks.md, "## Lists and views"): N
# cc_lead-like records loaded with generate_series into a fresh PostgreSQL
# database, then 16 concurrent readers (wrk, a second process) on
#   1. the zone list: GET /v1/views/cc_lead/lista_nord (zone filter, three
#      open states, sorted by province), 50 rows;
#   2. an operator's own open list: GET /v1/records?assignee=op-7&state=...;
#   3. a phone lookup: GET /v1/records?field.phone=prefix:+393471...;
#   4. page 1,000 of a keyset walk of the zone list (50 rows a page);
#   5. a name search: GET /v1/records?q=cognome1234%20mar (full-text, two
#      words; an admin key), and the same kind by an operator (op-7: its
#      own records only);
#   6. a phone search: GET /v1/records?q=393471... (the digits of a pii
#      field: an admin key);
# and the time of `count=true` on the zone list and on the name search.
#   bash scripts/bench-lists.sh            # short profile: 300,000 records
#   PROFILE=3m bash scripts/bench-lists.sh # 3,000,000 records
# Needs wrk (installed with apt-get if missing), psql, jq, curl.
# Env: LEADFLOW (binary, default target/release/leadflow), DURATION (20s),
#      RECORDS (overrides the profile), PGURL (postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LEADFLOW:-target/release/leadflow}
DURATION=${DURATION:-20s}
case "${PROFILE:-short}" in
  short) N=300000 ;;
  3m) N=3000000 ;;
  *) echo "PROFILE is short or 3m" >&2; exit 2 ;;
esac
N=${RECORDS:-$N}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18091}
DB=lf_bench_lists
API=http://127.0.0.1:$PORT
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }

WORK=$(mktemp -d)
# A call center tenant: cc_lead, an admin key and 50 operators over the
# four zones (keys are the SHA-256 of their plaintext).
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
{
  cat <<TOML
listen = "127.0.0.1:$PORT"
[tenants.cc]
root = "$PWD"
workflows = ["cc_lead", "cc_opportunity", "cc_project", "cc_task", "cc_ticket"]
[[tenants.cc.keys]]
name = "admin"
sha256 = "$(sha cc-admin)"
TOML
  zones=(nord centro sud isole)
  for i in $(seq 0 49); do
    cat <<TOML
[tenants.cc.actors.op-$i]
role = "operator"
zones = ["${zones[$((i % 4))]}"]
[[tenants.cc.keys]]
name = "op-$i"
actor = "op-$i"
sha256 = "$(sha "op-$i")"
TOML
  done
} > "$WORK/leadflow.toml"

PID=
start() {
  "$BIN" serve --config "$WORK/leadflow.toml" --database-url "$PGURL/$DB" >>"$WORK/daemon.log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do curl -fs "$API/readyz" >/dev/null && return; sleep 0.1; done
  echo "daemon did not start: $WORK/daemon.log" >&2; exit 1
}
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=; }
trap stop EXIT

psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
start   # migrates, registers the version, builds the field indexes
stop
HASH=$(psql "$PGURL/$DB" -qAtc "SELECT hash FROM workflow_versions WHERE tenant_id = 'cc' AND workflow = 'cc_lead' LIMIT 1")
echo "loading $N cc_lead records (generate_series)..."
T0=$(date +%s.%N)
psql "$PGURL/$DB" -qAt <<SQL
-- The open-record counter's row trigger would update the same 50
-- actor_loads rows millions of times in one transaction (each update walks
-- the row's growing version chain: the load never ends); the loads are
-- counted once below instead. The search trigger stays: searches need it.
ALTER TABLE records DISABLE TRIGGER records_load_insert;
INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
SELECT 'cc', g, 'cc_lead', '$HASH', st, st IN ('converted', 'not_interested', 'invalid'),
       jsonb_strip_nulls(jsonb_build_object(
         'first_name', (ARRAY['Mario','Luca','Anna','Giulia','Marco','Sara','Paolo','Elena'])[1 + g % 8],
         'last_name', 'Cognome' || (g % 5003),
         'phone', '+39' || (3200000000 + (g::bigint * 7919) % 799999999)::text,
         'city', 'Comune' || (g % 811),
         'province', (ARRAY['MI','TO','GE','VE','BO','FI','RM','NA','BA','PA','CA','PG','AN','TS','VR','BS'])[1 + (g / 7) % 16],
         'zone', (ARRAY['nord','nord','nord','nord','nord','nord','centro','centro','centro','centro','sud','sud','isole','nord','nord','isole'])[1 + (g / 7) % 16],
         'call_attempts', g % 6,
         'callback_at', CASE WHEN g % 5 = 0 THEN to_char(timestamp '2026-06-01' + (g % 20000) * interval '7 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END)),
       CASE WHEN st = 'new' AND g % 3 = 0 THEN NULL ELSE 'op-' || (g % 50) END,
       1, ts, ts, ts
FROM (SELECT g, (ARRAY['new','new','in_progress','in_progress','appointment','converted','not_interested','invalid'])[1 + g % 8] AS st,
             timestamptz '2025-01-01' + g * interval '10 seconds' AS ts
      FROM generate_series(1, $N) AS g) AS s;
SELECT setval('record_ids', $N + 1);
INSERT INTO actor_loads (tenant_id, actor, open_records)
SELECT 'cc', assignee, count(*) FROM records WHERE tenant_id = 'cc' AND NOT is_final AND assignee IS NOT NULL GROUP BY assignee
ON CONFLICT (tenant_id, actor) DO UPDATE SET open_records = excluded.open_records;
ALTER TABLE records ENABLE TRIGGER records_load_insert;
VACUUM ANALYZE records;
SQL
T1=$(date +%s.%N)
echo "loaded in $(echo "$T1 - $T0" | bc) s (indexes maintained during the load)"
start

get() { curl -fsS "$API$1" -H "Authorization: Bearer $2"; }
PHONE=$(psql "$PGURL/$DB" -qAtc "SELECT fields->>'phone' FROM records WHERE tenant_id = 'cc' AND id = $((N / 2))")
PREFIX=${PHONE:0:11}
# The cursor of page 1,000 of the zone list (walked once, 999 requests).
CUR=
# (With fewer records than 1,000 pages, the walk stops at the last page.)
for _ in $(seq 999); do
  NEXT=$(get "/v1/views/cc_lead/lista_nord?limit=50${CUR:+&after=$CUR}" cc-admin | jq -r '.next // empty')
  [ -z "$NEXT" ] && break
  CUR=$NEXT
done
ZONE="/v1/views/cc_lead/lista_nord?limit=50"
OWN="/v1/records?workflow=cc_lead&assignee=op-7&state=new,in_progress,appointment&limit=50"
LOOKUP="/v1/records?workflow=cc_lead&field.phone=prefix:$PREFIX&limit=50"
DEEP="/v1/views/cc_lead/lista_nord?limit=50&after=$CUR"
NAME="/v1/records?workflow=cc_lead&q=cognome$((N / 2 % 5003))%20mar&limit=50"
OPNAME="/v1/records?workflow=cc_lead&q=cognome1&limit=50"
PHONEQ="/v1/records?workflow=cc_lead&q=${PHONE:1:9}&limit=50"
for q in "$ZONE" "$OWN" "$LOOKUP" "$DEEP" "$NAME" "$PHONEQ"; do
  n=$(get "$q" cc-admin | jq '.items | length')
  echo "check: $n rows for $q"
  [ "$n" -gt 0 ] || { echo "no rows: the benchmark would measure nothing" >&2; exit 1; }
done
n=$(get "$OPNAME" op-7 | jq '.items | length')
echo "check: $n rows for $OPNAME (op-7)"
[ "$n" -gt 0 ] || { echo "no rows for op-7's name search" >&2; exit 1; }

echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # name path key
  local lua="$WORK/$1.lua"
  cat > "$lua" <<LUA
wrk.headers["Authorization"] = "Bearer $3"
done = function(summary, latency, requests)
  io.write(string.format("P50 %.1f P95 %.1f P99 %.1f NON2XX %d\\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
LUA
  wrk -t2 -c16 -d"$DURATION" -s "$lua" "$API$2" > "$WORK/$1.txt"
  local rps line
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.txt")
  line=$(grep '^P50' "$WORK/$1.txt")
  printf '%-34s %8s req/s  %s ms  (load %s)\n' "$1" "$rps" "$line" "$(cut -d' ' -f1 /proc/loadavg)"
}
echo "$N records, 16 connections, $DURATION each (latency percentiles in ms; NON2XX must be 0):"
run "zone list (lista_nord, 50 rows)" "$ZONE" cc-admin
run "operator's own open list" "$OWN" op-7
run "phone lookup (prefix)" "$LOOKUP" cc-admin
run "page 1,000 of the zone list" "$DEEP" cc-admin
run "name search (q=, 2 words)" "$NAME" cc-admin
run "operator's name search (q=)" "$OPNAME" op-7
run "phone search (q=, digits)" "$PHONEQ" cc-admin
for i in 1 2 3; do
  S=$(date +%s%N)
  C=$(get "/v1/views/cc_lead/lista_nord?limit=1&count=true" cc-admin | jq -c .count)
  E=$(date +%s%N)
  echo "count of the zone list: $C in $(( (E - S) / 1000000 )) ms"
done
S=$(date +%s%N)
C=$(get "$NAME&count=true" cc-admin | jq -c .count)
E=$(date +%s%N)
echo "count of the name search: $C in $(( (E - S) / 1000000 )) ms"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
