# Shared by the HTTP benchmarks (sourced, not run): wrk, a fresh PostgreSQL
# database and the daemon with the five example tenants on it.
# Needs, set by the caller: BIN, PGURL, PORT, DB. Sets API and PID; on exit
# the daemon is stopped.
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }
API=http://127.0.0.1:$PORT

# start_daemon LOGFILE: recreate $DB and serve examples/leadflow.toml on it.
start_daemon() {
  psql "$PGURL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  "$BIN" serve --config examples/leadflow.toml --listen 127.0.0.1:"$PORT" --database-url "$PGURL/$DB" >"$1" 2>&1 &
  PID=$!
  trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
  for _ in $(seq 100); do curl -fs "$API/readyz" >/dev/null && break; sleep 0.1; done
}
