#!/usr/bin/env bash
# The fault suite (docs/reliability.md): breaks the daemon the ways production
# will and checks what survived. Loopback only; a private PostgreSQL cluster
# (initdb in a temporary directory, its own port) so restarting it disturbs
# nothing else; every scenario prints one line of figures and a verdict.
#
#   bash scripts/faults.sh                 # full profile (about 10 minutes)
#   bash scripts/faults.sh --short         # CI profile (about 3 minutes)
#   bash scripts/faults.sh kill9-pg slow-clients   # some scenarios only
#
# Scenarios: kill9-sqlite kill9-pg pg-restart two-daemons slow-clients
#            hostile-reload schemathesis
# Env: LEADFLOW (binary; default target/release/leadflow, else target/debug/leadflow),
#      FAULTS_PORT (first port, default 18400), FAULTS_PG_PORT (default 55439),
#      FAULTS_VENV (schemathesis venv, default ~/.cache/leadflow-faults/venv).
# Needs: python3, curl, PostgreSQL server binaries (initdb, pg_ctl), psql.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=full
SCENARIOS=()
for a in "$@"; do
  case $a in
    --short) PROFILE=short ;;
    --full) PROFILE=full ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) SCENARIOS+=("$a") ;;
  esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(kill9-sqlite kill9-pg pg-restart two-daemons slow-clients hostile-reload schemathesis)
if [ -n "${LEADFLOW:-}" ]; then BIN=$LEADFLOW
elif [ -x "${CARGO_TARGET_DIR:-target}/release/leadflow" ]; then BIN=${CARGO_TARGET_DIR:-target}/release/leadflow
else BIN=${CARGO_TARGET_DIR:-target}/debug/leadflow; fi
[ -x "$BIN" ] || { echo "faults: no binary at $BIN (cargo build --release first)"; exit 2; }
BIN=$(realpath "$BIN")
PORT=${FAULTS_PORT:-18400}
PGPORT=${FAULTS_PG_PORT:-55439}
VENV=${FAULTS_VENV:-$HOME/.cache/leadflow-faults/venv}
SCHEMATHESIS=schemathesis==4.32.5
WORK=$(mktemp -d /tmp/leadflow-faults.XXXXXX)
chmod 755 "$WORK"
PY="python3 $ROOT/scripts/faults/load.py"
KEY=faults-admin
KEY2=faults-admin-2   # tenant f2 (a key hash belongs to one tenant)
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
if [ "$PROFILE" = short ]; then
  LOAD_S=15 KILLS=2 RECORDS=100 PINGS=300 FLOOD=1100 FLOOD_S=20 ST_EXAMPLES=5
else
  LOAD_S=60 KILLS=4 RECORDS=400 PINGS=3000 FLOOD=1100 FLOOD_S=40 ST_EXAMPLES=50
fi
FAILED=0
PIDS=()
GRACE=5   # [server] shutdown_grace of the suite's daemons, seconds

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ -d "$WORK/pg/data" ] && pg_ctl_ stop -m immediate >/dev/null 2>&1
  if [ "$FAILED" = 0 ]; then rm -rf "$WORK"; else echo "faults: logs kept in $WORK"; fi
}
trap cleanup EXIT

verdict() { # NAME OK FIGURES
  local v=PASS; [ "$2" = 1 ] || { v=FAIL; FAILED=1; }
  printf '%-15s %s  %s\n' "$1" "$v" "$3"
}

# --- private PostgreSQL -------------------------------------------------------
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl_() { as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" "$@"; }
PGURL=postgres://postgres@127.0.0.1:$PGPORT
pg_up() {
  [ -d "$WORK/pg/data" ] && return 0
  mkdir -p "$WORK/pg"; [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
  as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres >/dev/null || return 1
  pg_ctl_ -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" -w start >/dev/null
}
fresh_db() { PGOPTIONS='-c client_min_messages=warning' psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null; }

# --- daemon -------------------------------------------------------------------
# config DIR: two tenants, f1 and f2, each with its own copy of the project.
config() {
  local d=$1
  mkdir -p "$d"
  for t in f1 f2; do rm -rf "$d/$t"; cp -r "$ROOT/scripts/faults/project" "$d/$t"; done
  cat >"$d/leadflow.toml" <<EOF
listen = "127.0.0.1:0"
[server]
shutdown_grace = $GRACE
$(for t in f1 f2; do cat <<T
[tenants.$t]
root = "$t"
workflows = ["counter", "ping"]
[[tenants.$t.keys]]
name = "admin"
sha256 = "$(if [ $t = f1 ]; then sha $KEY; else sha $KEY2; fi)"
role = "operator"
T
done)
EOF
}
# start NAME PORT DBURL [extra serve args]: sets LAST_PID
start() {
  local name=$1 port=$2 db=$3; shift 3
  "$BIN" serve --config "$WORK/cfg/leadflow.toml" --listen 127.0.0.1:"$port" --database-url "$db" "$@" \
    >>"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$LAST_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "faults: daemon $name did not start; its log:"; tail -20 "$WORK/$name.log"; return 1
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('$1'))" "$2"; }

config "$WORK/cfg"

# --- scenarios ----------------------------------------------------------------
# kill -9 under 16 writers; the acknowledgement log is checked against the store.
kill9() { # STORE(pg|sqlite)
  local store=$1 db api pid ids=$WORK/ids-$1 acks=$WORK/acks-$1
  if [ "$store" = pg ]; then pg_up || return 1; fresh_db lf_kill9; db=$PGURL/lf_kill9
  else db=sqlite:$WORK/kill9.db; fi
  api=http://127.0.0.1:$PORT
  start kill9-$store "$PORT" "$db" || { verdict "kill9-$store" 0 "daemon did not start"; return; }
  pid=$LAST_PID
  $PY create --api "$api" --key $KEY --records "$RECORDS" --out "$ids" || { verdict "kill9-$store" 0 "create failed"; return; }
  : >"$acks"
  $PY bump --api "$api" --key $KEY --ids "$ids" --acks "$acks" --threads 16 --seconds "$LOAD_S" >"$WORK/bump-$store.json" &
  local load=$!
  for _ in $(seq "$KILLS"); do
    sleep "$(python3 -c "print($LOAD_S / ($KILLS + 1))")"
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    sleep 0.3
    start kill9-$store "$PORT" "$db" || break
    pid=$LAST_PID
  done
  wait $load
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  local v ok=0
  v=$($PY verify --acks "$acks" --ids "$ids" --db "$db") && ok=1
  verdict "kill9-$store" $ok "16 writers ${LOAD_S}s, $KILLS kills: $v $(cat "$WORK/bump-$store.json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("p99 %sms, %s retries, unresolved %s, unexpected %s" % (d["p99_ms"], d["retries"], d["unresolved"], d["unexpected"]))')"
}

# PostgreSQL restarted under load: the daemon recovers without a restart.
pg_restart() {
  pg_up || return 1; fresh_db lf_pgrestart
  local db=$PGURL/lf_pgrestart api=http://127.0.0.1:$PORT ids=$WORK/ids-pgr acks=$WORK/acks-pgr pid
  start pg-restart "$PORT" "$db" || { verdict pg-restart 0 "daemon did not start"; return; }
  pid=$LAST_PID
  $PY create --api "$api" --key $KEY --records "$RECORDS" --out "$ids" || { verdict pg-restart 0 "create failed"; return; }
  : >"$acks"
  $PY bump --api "$api" --key $KEY --ids "$ids" --acks "$acks" --threads 16 --seconds "$LOAD_S" >"$WORK/bump-pgr.json" &
  local load=$! restarts=$(( KILLS / 2 > 0 ? KILLS / 2 : 1 ))
  for _ in $(seq $restarts); do
    sleep "$(python3 -c "print($LOAD_S / ($restarts + 1))")"
    pg_ctl_ restart -m fast -w -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
  done
  wait $load
  local alive=0 ready ok=0 v
  kill -0 "$pid" 2>/dev/null && alive=1
  ready=$(curl -s -o /dev/null -w '%{http_code}' "$api/readyz")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  # An outage is 503 with Retry-After (clients retry), never a 500.
  local five00
  five00=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"].get("500", 0))' "$WORK/bump-pgr.json")
  v=$($PY verify --acks "$acks" --ids "$ids" --db "$db") && [ $alive = 1 ] && [ "$ready" = 200 ] && [ "$five00" = 0 ] && ok=1
  verdict pg-restart $ok "$restarts restarts under 16 writers ${LOAD_S}s, daemon alive=$alive readyz=$ready: $v statuses $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], "p99", d["p99_ms"], "ms max", d["max_ms"], "ms")' "$WORK/bump-pgr.json")"
}

# Two daemons share the due queue; one is killed while timers fire.
two_daemons() {
  pg_up || return 1; fresh_db lf_two
  local db=$PGURL/lf_two a b ids=$WORK/ids-ping
  start two-a "$PORT" "$db" || { verdict two-daemons 0 "daemon a did not start"; return; }
  a=$LAST_PID
  start two-b "$((PORT + 1))" "$db" || { verdict two-daemons 0 "daemon b did not start"; return; }
  b=$LAST_PID
  # The timers fall due over 8 s, after all are created (creates take a
  # few ms each); daemon a is killed 2 s into that window.
  local window
  window=$($PY pings --api "http://127.0.0.1:$PORT" --key $KEY --records "$PINGS" --spread 8 \
    --delay "$(( 3 + PINGS / 100 ))" --out "$ids") || { verdict two-daemons 0 "create failed"; return; }
  local kill_at pending
  kill_at=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['window_start'] + 2)" "$window")
  python3 -c "import time,sys; time.sleep(max(0, float(sys.argv[1]) - time.time()))" "$kill_at"
  pending=$(psql "$db" -qAtc "SELECT count(*) FROM records WHERE workflow = 'ping' AND state <> 'done'")
  kill -9 "$a"; wait "$a" 2>/dev/null
  # a's claims come back when their lease ends; wait for the queue to drain.
  local left=1 t0=$SECONDS
  while [ $((SECONDS - t0)) -lt 90 ]; do
    left=$(psql "$db" -qAtc "SELECT count(*) FROM records WHERE workflow = 'ping' AND state <> 'done'")
    [ "$left" = 0 ] && break
    sleep 1
  done
  local drained=$((SECONDS - t0)) ok=0 v
  kill -TERM "$b"; wait "$b" 2>/dev/null
  v=$($PY verify-pings --ids "$ids" --db "$db") && ok=1
  verdict two-daemons $ok "$PINGS timers over 8s, one daemon killed 2s into the window with $pending unfired, drained ${drained}s after the kill: $v"
}

# Slow clients: partial headers and slow bodies must not starve real requests.
slow_clients() {
  local api=http://127.0.0.1:$PORT pid id out ok=0
  ( ulimit -n 1024; exec "$BIN" serve --config "$WORK/cfg/leadflow.toml" --listen 127.0.0.1:"$PORT" \
      --database-url "sqlite:$WORK/slow.db" >>"$WORK/slow.log" 2>&1 ) &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 200); do curl -fs "$api/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
  id=$(field id "$(curl -s -X POST "$api/v1/records" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"workflow":"counter","fields":{}}')")
  out=$( (ulimit -n 8192; python3 "$ROOT/scripts/faults/slow.py" flood --api "$api" --key $KEY --probe "/v1/records/$id" --conns "$FLOOD" --seconds "$FLOOD_S") )
  python3 - "$out" <<'PY' && ok=1
import json, sys
d = json.loads(sys.argv[1])
# Refusals are allowed while the flood connects (it exhausts the
# descriptors), plus a second; on a loaded machine that burst takes longer.
# After it, at most 5% of the probes may be refused.
sys.exit(0 if d["last_refusal_s"] <= max(6, (d["flood_connected_s"] or 0) + 1) and d["refused_after_burst"] <= 0.05 * d["probes"] and d["probe_ok"] > 0 and (d["probe_p99_ms"] or 1e9) < 1000
         and d["closed_by_server"] > 0.9 * d["partial_header_conns"] else 1)
PY
  # SIGTERM with a slow client connected: the daemon exits within its deadline.
  python3 -c "
import socket, time
a = socket.create_connection(('127.0.0.1', $PORT)); a.sendall(b'POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{')
b = socket.create_connection(('127.0.0.1', $PORT)); b.sendall(b'GET /v1/records HTTP/1.1\r\nHost: x\r\n')
time.sleep(60)" &
  local slowc=$!
  sleep 0.5
  local t0 exit_ms
  t0=$(date +%s%N); kill -TERM "$pid"; wait "$pid" 2>/dev/null; exit_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill "$slowc" 2>/dev/null
  [ "$exit_ms" -lt $(( (GRACE + 2) * 1000 )) ] || ok=0
  verdict slow-clients $ok "$FLOOD partial-header + $((FLOOD / 10)) slow-body conns for ${FLOOD_S}s, daemon at ulimit -n 1024: $out; SIGTERM with two slow clients (shutdown_grace ${GRACE}s): exit in ${exit_ms} ms"
}

# Hostile hot reload: a 20,000-state workflow and a 20 MB title in one tenant;
# the other tenant keeps answering, memory stays bounded, the old version serves.
hostile_reload() {
  local api=http://127.0.0.1:$PORT pid id ok=0
  start reload "$PORT" "sqlite:$WORK/reload.db" || { verdict hostile-reload 0 "daemon did not start"; return; }
  pid=$LAST_PID
  id=$(field id "$(curl -s -X POST "$api/v1/records" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"workflow":"counter","fields":{}}')")
  local rss0; rss0=$(rss_mb "$pid")
  python3 - "$WORK/cfg/f2/workflows" <<'PY' &
import sys, time
d = sys.argv[1]
with open(f"{d}/big.toml", "w") as f:
    f.write('[workflow]\nid = "big"\ntitle = "big"\nrecord = "x"\ninitial = "s0"\n')
    for i in range(20000):
        f.write(f'[states.s{i}]\ntitle = "s{i}"\n')
    for i in range(19999):
        f.write(f'[transitions.t{i}]\nfrom = ["s{i}"]\nto = "s{i+1}"\nby = ["operator"]\n')
time.sleep(3)
src = open(f"{d}/counter.toml").read().replace('title = "Counter (fault suite)"', 'title = "' + "x" * 20_000_000 + '"')
open(f"{d}/counter.toml", "w").write(src)
PY
  local writer=$!
  # Probe the other tenant's record every 50 ms for 12 s.
  local lat
  lat=$(python3 - "$api" "$KEY" "$id" <<'PY'
import http.client, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); xs = []; fails = 0
end = time.monotonic() + 12
while time.monotonic() < end:
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        c.request("GET", f"/v1/records/{sys.argv[3]}", headers={"Authorization": f"Bearer {sys.argv[2]}"})
        r = c.getresponse(); r.read(); c.close()
        if r.status != 200: fails += 1
    except Exception:
        fails += 1
    xs.append(time.monotonic() - t0); time.sleep(0.05)
xs.sort()
print(f"{len(xs)} probes, {fails} failed, p99 {1000*xs[int(.99*len(xs))]:.1f} ms, max {1000*xs[-1]:.1f} ms")
PY
)
  wait $writer
  sleep 2
  local rss1 f2 wf
  rss1=$(rss_mb "$pid")
  f2=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/v1/records" -H "Authorization: Bearer $KEY2" -H 'Content-Type: application/json' -d '{"workflow":"counter","fields":{}}')
  wf=$(curl -s "$api/v1/workflows" -H "Authorization: Bearer $KEY2" | head -c 100000 | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)
    print(len(json.dumps(d)))
except Exception as e:
    print("unparsable")')
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  python3 - "$lat" "$rss1" "$f2" <<'PY' && ok=1
import re, sys
lat, rss, f2 = sys.argv[1], int(sys.argv[2] or 10**6), sys.argv[3]
m = re.search(r"(\d+) failed, p99 ([\d.]+) ms, max ([\d.]+) ms", lat)
sys.exit(0 if m and int(m.group(1)) == 0 and float(m.group(3)) < 500 and rss < 300 and f2 in ("200", "201") else 1)
PY
  config "$WORK/cfg"   # the next scenarios start from the clean project
  verdict hostile-reload $ok "20k-state workflow + 20 MB title in f2; f1: $lat; RSS ${rss0} -> ${rss1} MB; f2 create after: $f2"
}

# schemathesis against /openapi.json: no request may give a 5xx.
schemathesis_run() {
  local api=http://127.0.0.1:$PORT pid ok=0 out
  if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/pip" show schemathesis 2>/dev/null | grep -q "Version: ${SCHEMATHESIS#*==}"; then
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "$SCHEMATHESIS" >/dev/null 2>&1 \
      || { verdict schemathesis 0 "cannot install $SCHEMATHESIS"; return; }
  fi
  start schemathesis "$PORT" "sqlite:$WORK/st.db" || { verdict schemathesis 0 "daemon did not start"; return; }
  pid=$LAST_PID
  curl -s -X POST "$api/v1/records" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"workflow":"counter","fields":{}}' >/dev/null
  # st_hooks.py: serializers for the import bodies (CSV, NDJSON).
  out=$(PYTHONPATH="$ROOT/scripts/faults" SCHEMATHESIS_HOOKS=st_hooks "$VENV/bin/schemathesis" run "$api/openapi.json" --url "$api" -H "Authorization: Bearer $KEY" \
        --checks not_a_server_error --max-examples "$ST_EXAMPLES" --no-color 2>&1) && ok=1
  echo "$out" >"$WORK/schemathesis.out"
  kill -0 "$pid" 2>/dev/null || ok=0
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  verdict schemathesis $ok "$SCHEMATHESIS, checks not_a_server_error, max-examples $ST_EXAMPLES: $(grep -Eo '[0-9]+ generated.*' "$WORK/schemathesis.out" | head -n1)"
  [ $ok = 1 ] || tail -40 "$WORK/schemathesis.out"
}

echo "leadflow fault suite: profile $PROFILE, binary $BIN, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${SCENARIOS[@]}"; do
  case $s in
    kill9-sqlite) kill9 sqlite ;;
    kill9-pg) kill9 pg ;;
    pg-restart) pg_restart ;;
    two-daemons) two_daemons ;;
    slow-clients) slow_clients ;;
    hostile-reload) hostile_reload ;;
    schemathesis) schemathesis_run ;;
    *) echo "faults: unknown scenario $s"; FAILED=1 ;;
  esac
  PORT=$((PORT + 2))
done
if [ $FAILED = 0 ]; then echo "faults: all passed"; else echo "faults: FAILED"; fi
exit $FAILED
