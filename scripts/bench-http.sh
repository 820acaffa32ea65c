#!/usr/bin/env bash
# HTTP daemon benchmark (docs/benchmarks.md, "## HTTP daemon"): POST
# transitions at 32 concurrent connections against PostgreSQL, load from a
# second process (wrk), and idle RSS with the five example tenants.
#   bash scripts/bench-http.sh            # needs wrk (apt-get install wrk), psql, jq
# Env: LEADFLOW (binary, default target/release/leadflow), DURATION (30s),
#      RECORDS (1000), PGURL (postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LEADFLOW:-target/release/leadflow}
DURATION=${DURATION:-30s}
RECORDS=${RECORDS:-1000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18090}
DB=lf_bench_http
. scripts/bench-lib.sh
start_daemon /tmp/leadflow-bench.log
sleep 3
echo "idle RSS, five tenants on PostgreSQL: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$PID/status)"

# Leads assigned to dealer-rm with one contact attempt: make_appointment
# then (re)schedules an appointment each time (history, timers re-armed,
# outbox message), a realistic write.
IDS=()
for i in $(seq "$RECORDS"); do
  id=$(curl -s -X POST $API/v1/records -H 'Authorization: Bearer aslm-admin' -H 'Content-Type: application/json' \
    -d "{\"workflow\":\"aslm\",\"fields\":{\"first_name\":\"B$i\",\"province\":\"RM\",\"phone\":\"+39 06 1\"}}" | jq -r .id)
  curl -fs -o /dev/null -X POST $API/v1/records/$id/transitions/log_contact_attempt -H 'Authorization: Bearer aslm-dealer-rm'
  IDS+=("$id")
done
# As pgbench does after loading: statistics and a vacuumed heap, which
# autovacuum would give a production database (it is off on some CI
# machines). See docs/benchmarks.md.
psql "$PGURL/$DB" -qAtc "VACUUM ANALYZE"
LUA=$(mktemp --suffix=.lua)
{
  echo "local ids = {$(IFS=,; echo "${IDS[*]}")}"
  cat <<'LUA'
local body = '{"input":{"appointment_at":"2031-01-15T10:00:00Z"}}'
local headers = { ["Authorization"] = "Bearer aslm-dealer-rm", ["Content-Type"] = "application/json" }
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("POST", "/v1/records/" .. id .. "/transitions/make_appointment", headers, body)
end
LUA
} > "$LUA"
# CPU time (utime+stime, clock ticks) of the daemon and of every postgres process.
ticks() { awk '{t += $14 + $15} END {print t + 0}' /proc/"$PID"/stat; }
pg_ticks() { local t=0 p; for p in $(pgrep -x postgres); do t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0))); done; echo "$t"; }
echo "POST /v1/records/{id}/transitions/make_appointment, $RECORDS records, 32 connections, $DURATION:"
D0=$(ticks); P0=$(pg_ticks)
wrk -t"${WRK_THREADS:-4}" -c32 -d"$DURATION" --latency -s "$LUA" $API | tee /tmp/leadflow-bench-wrk.txt
D1=$(ticks); P1=$(pg_ticks)
N=$(awk '/requests in/ {print $1}' /tmp/leadflow-bench-wrk.txt)
HZ=$(getconf CLK_TCK)
echo "CPU per request: daemon $(( (D1 - D0) * 1000000 / HZ / N )) us, PostgreSQL $(( (P1 - P0) * 1000000 / HZ / N )) us"
echo "RSS after the run: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/$PID/status)"
