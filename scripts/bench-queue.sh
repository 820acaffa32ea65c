#!/usr/bin/env bash
# Work queue benchmark (issue 13, docs/benchmarks.md "Work queues"): N
# cc_lead records loaded with generate_series into a fresh PostgreSQL
# database (as scripts/bench-lists.sh), then 50 operators pulling at once
# for DURATION: each loops "POST /v1/queues/cc_lead/chiamate/next, then log
# the call (POST .../transitions/log_call, no answer)", which releases the
# lead. Prints the latency percentiles of the pulls and of the calls logged,
# and the duplicates: a lead held by two operators at overlapping times
# (must be 0).
#   bash scripts/bench-queue.sh            # 3,000,000 records, 60 s
#   bash scripts/bench-queue.sh --short    # 100,000 records, 15 s
# The queue's calling hours are taken out of the benchmark's copy of the
# project (it runs at any hour). Latencies are measured by the client (a
# Python thread per operator, keep-alive connections), so they include its
# own overhead.
# Two runs on the same data: "paced", each operator waiting a random 0-2 s
# (THINK=1, mean 1 s) between logging a call and pulling again (50
# operators then pull about 40 times a second in all, still far above a
# call center's rate of one call per operator per minute or two): the
# latency an operator sees; then "saturated", no wait at all (THINK 0):
# the most pulls per second the machine serves, where each request queues
# behind the 49 others, so its latency is 50 / throughput, not a pull's
# cost. The duplicates are counted in both.
# Needs psql, curl, python3. Env: LEADFLOW (binary, default
# target/release/leadflow, built if missing), DURATION, RECORDS (overrides
# the profile), PGURL (postgres://postgres@127.0.0.1:5432), PORT (18093),
# KEEP=1 (keep the database lf_bench_queue for EXPLAIN afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
N=3000000
DURATION=${DURATION:-60}
if [ "${1:-}" = "--short" ]; then N=100000; DURATION=${DURATION_SHORT:-15}; fi
N=${RECORDS:-$N}
BIN=${LEADFLOW:-target/release/leadflow}
[ -x "$BIN" ] || cargo build --release --bin leadflow
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18093}
DB=lf_bench_queue
API=http://127.0.0.1:$PORT
OPS=50

WORK=$(mktemp -d)
# The project, without the queue's calling hours.
mkdir -p "$WORK/root"
cp -r workflows rules calendars "$WORK/root/"
[ -d templates ] && cp -r templates "$WORK/root/"
sed -i '/^calling_hours = /d' "$WORK/root/workflows/cc_lead.toml"
# A call center tenant: cc_lead, an admin key and 50 operators over the
# four zones (keys are the SHA-256 of their plaintext).
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
{
  cat <<TOML
listen = "127.0.0.1:$PORT"
[tenants.cc]
root = "$WORK/root"
workflows = ["cc_lead", "cc_opportunity", "cc_project", "cc_task", "cc_ticket"]
[[tenants.cc.keys]]
name = "admin"
sha256 = "$(sha cc-admin)"
TOML
  zones=(nord centro sud isole)
  for i in $(seq 0 $((OPS - 1))); do
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
cleanup() { stop; [ -n "${KEEP:-}" ] || psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
start   # migrates, registers the version, builds the field indexes
stop
HASH=$(psql "$PGURL/$DB" -qAtc "SELECT hash FROM workflow_versions WHERE tenant_id = 'cc' AND workflow = 'cc_lead' LIMIT 1")
echo "loading $N cc_lead records (generate_series)..."
T0=$(date +%s.%N)
# Open leads are assigned to the operators (one in three new ones are not:
# nobody may pull those); one in five has a callback, some due.
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
         'province', (ARRAY['MI','TO','GE','VE','BO','FI','RM','NA','BA','PA','CA','PG','AN','TS','VR','BS'])[1 + (g / 7) % 16],
         'zone', (ARRAY['nord','nord','nord','nord','nord','nord','centro','centro','centro','centro','sud','sud','isole','nord','nord','isole'])[1 + (g / 7) % 16],
         'call_attempts', g % 6,
         'callback_at', CASE WHEN g % 5 = 0 THEN to_char(timestamp '2026-06-01' + (g % 20000) * interval '7 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END)),
       CASE WHEN st = 'new' AND g % 3 = 0 THEN NULL ELSE 'op-' || (g % $OPS) END,
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
echo "loaded in $(echo "$(date +%s.%N) - $T0" | bc) s"
start
curl -fsS -X POST "$API/v1/queues/cc_lead/chiamate/next" -H "Authorization: Bearer op-7" | head -c 300; echo
curl -fsS -X DELETE "$API/v1/queues/cc_lead/chiamate/lease" -H "Authorization: Bearer op-7" >/dev/null

run() {
echo "== $1 (think time 0-$(echo "2 * $2" | bc) s), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$PORT" "$OPS" "$DURATION" "$2" <<'PY'
import http.client, json, random, sys, threading, time
port, ops, duration, think = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
pulls, calls, holds, errors = [], [], [], []
firsts, later_all = [], []
lock = threading.Lock()
start = threading.Barrier(ops)

def operator(i):
    key = f"op-{i}"
    c = http.client.HTTPConnection("127.0.0.1", port)
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    mine_p, mine_c, mine_h, mine_e = [], [], [], []
    start.wait()
    end = time.monotonic() + duration
    while time.monotonic() < end:
        t0 = time.monotonic()
        c.request("POST", "/v1/queues/cc_lead/chiamate/next", body=b"", headers=h)
        r = c.getresponse(); body = r.read()
        t1 = time.monotonic()
        mine_p.append(t1 - t0)
        if r.status != 200:
            mine_e.append((r.status, body[:200]))
            time.sleep(0.05)
            continue
        rid = json.loads(body)["id"]
        t2 = time.monotonic()
        c.request("POST", f"/v1/records/{rid}/transitions/log_call",
                  body=json.dumps({"input": {"call_outcome": "no_answer"}}).encode(), headers=h)
        r = c.getresponse(); body = r.read()
        t3 = time.monotonic()
        mine_c.append(t3 - t2)
        if r.status != 200:
            mine_e.append((r.status, body[:200]))
        # Surely held from the pull's answer until the call is sent (the
        # server holds it longer on both sides).
        mine_h.append((rid, t1, t2, key))
        if think > 0:
            time.sleep(random.uniform(0, 2 * think))
    with lock:
        pulls.extend(mine_p); calls.extend(mine_c); holds.extend(mine_h); errors.extend(mine_e)
        firsts.extend(mine_p[:1]); later_all.append(mine_p[1:])

threads = [threading.Thread(target=operator, args=(i,)) for i in range(ops)]
t = time.monotonic()
for th in threads: th.start()
for th in threads: th.join()
wall = time.monotonic() - t

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000 if xs else float("nan")

# Two operators holding the same lead at overlapping times.
by = {}
for rid, a, b, who in holds:
    by.setdefault(rid, []).append((a, b, who))
dups = 0
for rid, hs in by.items():
    hs.sort()
    for (a1, b1, w1), (a2, b2, w2) in zip(hs, hs[1:]):
        if w1 != w2 and a2 < b1:
            dups += 1
print(f"{ops} operators, {wall:.0f} s: {len(pulls)} pulls ({len(pulls) / wall:.0f}/s), {len(calls)} calls logged")
print(f"pull      p50 {pct(pulls, 50):6.1f} ms  p95 {pct(pulls, 95):6.1f} ms  p99 {pct(pulls, 99):6.1f} ms")
later = [x for xs in later_all for x in xs]
print(f"  first pulls (all {ops} at the same instant): p50 {pct(firsts, 50):6.1f} ms  max {pct(firsts, 100):6.1f} ms")
print(f"  every later pull:                  p50 {pct(later, 50):6.1f} ms  p95 {pct(later, 95):6.1f} ms  p99 {pct(later, 99):6.1f} ms")
print(f"log_call  p50 {pct(calls, 50):6.1f} ms  p95 {pct(calls, 95):6.1f} ms  p99 {pct(calls, 99):6.1f} ms")
print(f"duplicates (a lead held by two operators at once): {dups}")
print(f"distinct leads served: {len(by)}; non-200 answers: {len(errors)} {errors[:3]}")
sys.exit(1 if dups else 0)
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
run paced "${THINK:-1}"
run saturated 0
