#!/usr/bin/env bash
# A 3-node Citus cluster on this machine, for testing leadflow against
# distributed PostgreSQL (docs/scaling.md): coordinator on 127.0.0.1:9700,
# workers on 9701 and 9702, each its own initdb data directory run as the
# `postgres` OS user with shared_preload_libraries = 'citus', trust auth on
# 127.0.0.1. The main PostgreSQL (5432) is not touched.
#   bash scripts/citus-cluster.sh start|stop|status   (as root, Citus installed)
#   bash scripts/citus-cluster.sh createdb NAME       (a database on all nodes)
# Env: CITUS_BASE (data directories, default ${TMPDIR:-/tmp}/leadflow-citus).
set -euo pipefail
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BASE=${CITUS_BASE:-${TMPDIR:-/tmp}/leadflow-citus}
COORD=9700
PORTS="9700 9701 9702"
as_pg() { if [ "$(id -un)" = postgres ]; then bash -c "$*"; else su postgres -s /bin/bash -c "$*"; fi; }
q() { local port=$1 db=$2; shift 2; psql -h 127.0.0.1 -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"; }

# Citus 13 does not propagate CREATE DATABASE and keeps node metadata per
# database: create it on every node, the extension in each, then register
# the coordinator and the workers in the coordinator's copy.
createdb_all() {
  local db=$1 p
  for p in $PORTS; do
    q "$p" postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
    q "$p" "$db" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  q $COORD "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD)" >/dev/null
  for p in $PORTS; do
    [ "$p" = $COORD ] || q $COORD "$db" -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null
  done
}

case "${1:-start}" in
start)
  mkdir -p "$BASE"; chown postgres:postgres "$BASE" 2>/dev/null || true
  for p in $PORTS; do
    d=$BASE/n$p
    if [ ! -f "$d/PG_VERSION" ]; then
      as_pg "$BIN/initdb -D $d -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null"
      cat >> "$d/postgresql.conf" <<CONF
port = $p
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BASE'
shared_preload_libraries = 'citus'
shared_buffers = 64MB
max_connections = 200
wal_level = logical
max_prepared_transactions = 200
# One Citus maintenance worker per database: the tests create many.
max_worker_processes = 128
CONF
      echo "host all all 127.0.0.1/32 trust" >> "$d/pg_hba.conf"
    fi
    if ! as_pg "$BIN/pg_ctl -D $d status" >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl -D $d -l $d/server.log -w start >/dev/null"
    fi
  done
  # The maintenance database gets the extension too (the tests create
  # their databases from there and detect Citus in it).
  for p in $PORTS; do q "$p" postgres -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS citus"; done
  q $COORD postgres -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD)" >/dev/null
  for p in $PORTS; do
    [ "$p" = $COORD ] || q $COORD postgres -c "SELECT 1 FROM pg_dist_node WHERE nodeport = $p" | grep -q 1 \
      || q $COORD postgres -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null
  done
  echo "citus cluster up: coordinator 127.0.0.1:$COORD, workers 9701 9702 (data in $BASE)"
  ;;
createdb)
  createdb_all "${2:?database name}"
  ;;
status)
  for p in $PORTS; do as_pg "$BIN/pg_ctl -D $BASE/n$p status" >/dev/null 2>&1 && echo "$p up" || echo "$p down"; done
  ;;
stop)
  for p in $PORTS; do
    if [ -f "$BASE/n$p/postmaster.pid" ]; then as_pg "$BIN/pg_ctl -D $BASE/n$p -m fast -w stop >/dev/null" || true; fi
  done
  ;;
*)
  echo "usage: $0 start|stop|status|createdb NAME" >&2; exit 2
  ;;
esac
