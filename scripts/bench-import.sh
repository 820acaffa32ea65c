#!/usr/bin/env bash
# Bulk import against a raw COPY of the same CSV (docs/benchmarks.md,
# "Bulk import"): generates N call-center leads (scripts/generate-leads.py,
# 2 % duplicates, 1 % broken lines), then in the same run
#   1. psql \copy of the file into a plain table of text columns (no checks),
#   2. leadflow import into a fresh PostgreSQL database: every line a real
#      create (validation, assignment to 50 operators by load, history),
#      dedup on phone and e-mail, batches of 500; peak RSS by /usr/bin/time,
#   3. the same import into a fresh SQLite file,
#   4. leadflow export of the imported records vs a raw \copy ... TO.
# Prints rows/s of each and the ratios; the load average before and after.
#   bash scripts/bench-import.sh            # short profile: 50,000 lines
#   bash scripts/bench-import.sh --full     # 3,000,000 lines (long)
# Env: LEADFLOW (binary, default target/release/leadflow), N, PGURL, SKIP_SQLITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LEADFLOW:-target/release/leadflow}
[ -n "${CARGO_TARGET_DIR:-}" ] && [ -z "${LEADFLOW:-}" ] && BIN=$CARGO_TARGET_DIR/release/leadflow
N=${N:-50000}
[ "${1:-}" = "--full" ] && N=${N_FULL:-3000000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DB=lf_bench_import
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CSV=$WORK/leads.csv
command -v /usr/bin/time >/dev/null || { apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 scripts/generate-leads.py "$N" --seed 17 > "$CSV"
echo "generated $N lines ($(du -h "$CSV" | cut -f1))"

# A config with the call-center tenant and 50 operators over the four zones.
{
  echo "[tenants.callcenter]"
  echo "root = \"$PWD\""
  echo 'workflows = ["cc_lead", "cc_opportunity", "cc_project", "cc_task", "cc_ticket"]'
  zones=(nord centro sud isole)
  for i in $(seq 1 50); do
    echo "[tenants.callcenter.actors.op-$i]"
    echo 'role = "operator"'
    echo "zones = [\"${zones[$((i % 4))]}\"]"
  done
} > "$WORK/leadflow.toml"

psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql "$PGURL/$DB" -qAtc "CREATE TABLE raw_leads (first_name text, last_name text, phone text, email text, address text, city text, province text, zone text, source text, roof_type text, annual_kwh text, interest_kw text, notes text)"

secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
now() { date +%s.%N; }

# 1. Raw COPY (short lines are padded by nothing: COPY refuses them, so
# copy only the well-formed lines, which are nearly all of them).
python3 - "$CSV" "$WORK/ok.csv" <<'PY'
import csv, sys
with open(sys.argv[1], newline="") as f, open(sys.argv[2], "w", newline="") as o:
    w = csv.writer(o)
    for row in csv.reader(f):
        if len(row) == 13:
            w.writerow(row)
PY
t0=$(now)
psql "$PGURL/$DB" -qAtc "\\copy raw_leads FROM '$WORK/ok.csv' WITH (FORMAT csv, HEADER true)"
t1=$(now)
copy_s=$(secs "$t0" "$t1")
copy_rate=$(python3 -c "print(round($N / $copy_s))")
echo "raw \\copy FROM: ${copy_s} s, ${copy_rate} rows/s"

# 2. leadflow import on PostgreSQL.
t0=$(now)
/usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" import --config "$WORK/leadflow.toml" --database-url "$PGURL/$DB" \
  --tenant callcenter --workflow cc_lead --dedup phone,email "$CSV" > "$WORK/pg.out" 2> "$WORK/pg.err" || true
t1=$(now)
imp_s=$(secs "$t0" "$t1")
imp_rate=$(python3 -c "print(round($N / $imp_s))")
echo "leadflow import (PostgreSQL): ${imp_s} s, ${imp_rate} lines/s, $(cat "$WORK/pg.out"), peak RSS $(( $(cat "$WORK/rss") / 1024 )) MB"
python3 -c "print(f'ratio import / copy: {$imp_rate / $copy_rate:.3f}x (target >= 0.2x)')"

# 4. Export vs raw COPY TO.
t0=$(now)
psql "$PGURL/$DB" -qAtc "\\copy (SELECT id, state, assignee, fields FROM records WHERE workflow = 'cc_lead' ORDER BY id) TO '$WORK/raw-out.csv' WITH (FORMAT csv)"
t1=$(now)
cto_s=$(secs "$t0" "$t1")
t0=$(now)
"$BIN" export --config "$WORK/leadflow.toml" --database-url "$PGURL/$DB" --tenant callcenter --workflow cc_lead -o "$WORK/export.csv" 2> "$WORK/exp.err"
t1=$(now)
exp_s=$(secs "$t0" "$t1")
echo "raw \\copy TO: ${cto_s} s; leadflow export: ${exp_s} s ($(cat "$WORK/exp.err")); ratio $(python3 -c "print(f'{$cto_s / $exp_s:.3f}')")x (target >= 0.5x)"

# 3. SQLite.
if [ -z "${SKIP_SQLITE:-}" ]; then
  t0=$(now)
  "$BIN" import --config "$WORK/leadflow.toml" --database-url "sqlite:$WORK/lf.db" \
    --tenant callcenter --workflow cc_lead --dedup phone,email "$CSV" > "$WORK/sq.out" 2> "$WORK/sq.err" || true
  t1=$(now)
  sq_s=$(secs "$t0" "$t1")
  echo "leadflow import (SQLite): ${sq_s} s, $(python3 -c "print(round($N / $sq_s))") lines/s, $(cat "$WORK/sq.out")"
fi
psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
