#!/usr/bin/env bash
# KPIs and reports on a large PostgreSQL store (issue 11, docs/benchmarks.md
# "KPIs and reports"): ASLM SLA-1/2/3 per dealer for one quarter, the
# funnel per source over one year, one quarter's Oplead billing.
#
#   bash scripts/bench-kpi.sh            # full: 1,000,000 ASLM leads, 10,000,000 events
#   bash scripts/bench-kpi.sh --short    # 50,000 leads, 500,000 events
#   KEEP=1 bash ...                      # keep the database lf_bench_kpi
#   REUSE=1 KEEP=1 bash ...              # time the kept database again
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust; PGHOST/PGPORT/
# PGUSER move it) and builds the leadflow binary if it is missing. Creates
# (and at the end drops) the database lf_bench_kpi. Each statement is the
# one the store runs (`leadflow kpi --show-sql postgres`), timed by
# PostgreSQL over 3 runs after one warm-up; the CLI's wall time (process
# start, project load, query, print) is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
LEADS=1000000
OPLEAD=200000
if [ "${1:-}" = "--short" ]; then LEADS=50000; OPLEAD=10000; fi
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB=lf_bench_kpi
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${LEADFLOW_BIN:-$TARGET/release/leadflow}   # LEADFLOW_BIN: another build (statement times do not depend on it)
[ -x "$BIN" ] || cargo build --release --bin leadflow
CFG=examples/leadflow.toml

# KEEP=1 keeps the database at the end; REUSE=1 times the kept one again
# (no generation), e.g. after a change to the statements.
if [ -z "${KEEP:-}" ]; then
  trap 'psql -qAt -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
fi
if [ -z "${REUSE:-}" ]; then
  psql -qAt -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  # Start the daemon once on the empty database, as a deployment would: it
  # migrates, registers the tenants and workflow versions and builds the
  # field indexes of the `indexed = true` fields (the KPIs' anchors among
  # them); then stop it and load the data.
  "$BIN" serve --config $CFG --database-url "$URL" --listen 127.0.0.1:0 >/tmp/lf-bench-kpi-serve.log 2>&1 &
  SERVE=$!
  for _ in $(seq 1 300); do
    n=$(psql -qAt -d $DB -c "SELECT (SELECT count(*) FROM pg_indexes WHERE tablename = 'records' AND indexdef LIKE '%assigned_at%')
                                   * (SELECT count(*) FROM workflow_versions WHERE tenant_id = 'oplead' AND workflow = 'oplead_project')" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.2
  done
  kill $SERVE; wait $SERVE 2>/dev/null || true
  [ "${n:-0}" -ge 1 ] || { echo "the daemon built no index on assigned_at (log: /tmp/lf-bench-kpi-serve.log)"; exit 1; }
  start=$(date +%s)
  psql -q -d $DB -v leads=$LEADS -v oplead=$OPLEAD -f scripts/bench-kpi.sql
  echo "generated $LEADS ASLM leads, $(psql -qAt -d $DB -c 'SELECT count(*) FROM events') events, $OPLEAD Oplead leads in $(( $(date +%s) - start )) s"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# The statement of a KPI, its $N parameters filled in.
statement() { # tenant; the show-sql output on stdin
  python3 -c '
import re, sys
tenant = sys.argv[1]
text = sys.stdin.read()
sql = "\n".join(l for l in text.splitlines() if not l.startswith("--")).strip().rstrip(";")
params = dict(re.findall(r"^-- \$(\d+) = (.*?);?$", text, re.M))
for n in sorted(params, key=int, reverse=True):
    sql = sql.replace("$" + n, params[n])
print(sql.replace("<tenant>", tenant) + ";")
' "$1"
}

timed() { # label, tenant, statement
  local label=$1 tenant=$2 sql=$3
  local ms
  ms=$( { echo '\timing on'; for _ in 1 2 3 4; do echo "BEGIN; SET LOCAL app.tenant_id = '$tenant'; $sql COMMIT;"; done; } \
        | psql -q -d $DB 2>&1 | grep -E '^Time:' | awk '{print $2}' | paste -sd' ')
  # Time lines: BEGIN, SET, query, COMMIT per run; keep the queries, drop the warm-up.
  python3 - "$label" $ms <<'PY'
import sys
label, t = sys.argv[1], [float(x) for x in sys.argv[2:]]
q = t[2::4][1:]
q.sort()
print(f"{label:<40} median {q[len(q)//2]:8.1f} ms   (runs: {', '.join(f'{x:.1f}' for x in q)})")
PY
}

for k in sla1 sla2 sla3; do
  sql=$("$BIN" kpi --config $CFG --database-url "$URL" --tenant aslm aslm $k --period 2025-Q2 --show-sql postgres | statement aslm)
  timed "ASLM $k per dealer, 2025-Q2" aslm "$sql"
done
sql=$("$BIN" kpi --config $CFG --database-url "$URL" --tenant aslm aslm funnel_by_source --period 2025 --show-sql postgres | statement aslm)
timed "ASLM funnel per source, 2025" aslm "$sql"
sql=$("$BIN" report --config $CFG --database-url "$URL" --tenant oplead oplead_project billing --period 2025-Q2 --show-sql postgres | statement oplead)
timed "Oplead billing, 2025-Q2" oplead "$sql"

wall() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
echo "CLI wall time (process start, project load, query):"
echo "  leadflow kpi aslm sla1 sla2 sla3 --period 2025-Q2: $(wall "$BIN" kpi --config $CFG --database-url "$URL" --tenant aslm aslm sla1 sla2 sla3 --period 2025-Q2) ms"
echo "  leadflow kpi aslm funnel_by_source --period 2025:  $(wall "$BIN" kpi --config $CFG --database-url "$URL" --tenant aslm aslm funnel_by_source --period 2025) ms"
echo "  leadflow report oplead_project billing 2025-Q2:    $(wall "$BIN" report --config $CFG --database-url "$URL" --tenant oplead oplead_project billing --period 2025-Q2) ms"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
