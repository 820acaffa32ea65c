#!/usr/bin/env bash
# leadflow on a real Citus cluster (docs/scaling.md): installs Citus into the
# local PostgreSQL 15 when missing, starts a 3-node cluster on this machine
# (scripts/citus-cluster.sh: coordinator 127.0.0.1:9700, workers 9701 and
# 9702), runs the store conformance suite, the Citus checks (distribution,
# row-level security on every table, router plans, two daemons sharing
# timers), the scenario suite and the HTTP tests against it, then stops it.
#   bash scripts/citus.sh              # as root; about 10 minutes on 2 cores
#   bash scripts/citus.sh --keep       # leave the cluster running afterwards
# Env: CITUS_SRC_DIR (the Citus 13.2.2 source and its PG15 patch, default
#      ../shared/vendor/citus from the repository root), CITUS_BASE (data
#      directories), CARGO_TARGET_DIR, SUITES (override the test filters).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/citus-install.sh
KEEP=${1:-}
bash scripts/citus-cluster.sh start
[ "$KEEP" = --keep ] || trap 'bash scripts/citus-cluster.sh stop' EXIT
export LEADFLOW_TEST_PG=postgres://postgres@127.0.0.1:9700/postgres
# Tests that run only on PostgreSQL (the SQLite and memory halves of
# the same suites ran in the ordinary test run).
run() { echo "== $*"; nice cargo test -q "$@" 2>&1 | grep -v '^$' | tail -n 25; return "${PIPESTATUS[0]}"; }
run -p leadflow-runtime --test it citus::
run -p leadflow-runtime --test it -- conformance::conformance_pg pg_store::pg_row_level_security_isolates_tenants \
  pg_store::pg_worker_wakes_on_notify group_commit::pg timer_batch::pg
run --test it scenarios::every_scenario_passes_on_postgres
run --test it -- http_ --skip sqlite
echo "citus: all suites passed on the cluster"
