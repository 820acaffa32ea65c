#!/usr/bin/env bash
# A newcomer's tour of the HTTP API, and a smoke test: starts the daemon on a
# throw-away SQLite file with examples/leadflow.toml, then
#   1. takes an ASLM lead from creation to "closed with sale" (dealer-rm),
#   2. has a Q.PARTNER installer claim a lead from its area's pool.
# Needs curl and jq. Run from the repository root:
#   bash examples/walkthrough.sh          (builds target/release/leadflow if missing)
# PORT (default 18080) must be free: the script fails if anything listens
# there. The daemon's log goes to its own file, printed at the end
# (LOG=path to choose it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LEADFLOW:-target/release/leadflow}
[ -x "$BIN" ] || cargo build --release --quiet
PORT=${PORT:-18080}
API=http://127.0.0.1:$PORT
WORK=$(mktemp -d "${TMPDIR:-/tmp}/leadflow-walkthrough.XXXXXX")
DB=$WORK/walkthrough.db
LOG=${LOG:-$WORK/leadflow.log}
fail() { echo "walkthrough FAILED: $*" >&2; exit 1; }
# Another daemon (or anything) on the port would answer in our place.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT is taken (something already listens there); run with PORT=<a free port>"
fi
"$BIN" serve --config examples/leadflow.toml --listen 127.0.0.1:$PORT --database-url "sqlite:$DB" >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
ready=
for _ in $(seq 150); do
  kill -0 $PID 2>/dev/null || { tail -n 5 "$LOG" >&2; fail "the daemon exited at start (log: $LOG)"; }
  curl -fs $API/readyz >/dev/null && { ready=1; break; }
  sleep 0.2
done
[ -n "$ready" ] || fail "the daemon was not ready after 30 s (log: $LOG)"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then B=$'\033[1m' R=$'\033[0m'; else B= R=; fi
say() { printf '\n%s# %s%s\n' "$B" "$*" "$R"; }
call() { # METHOD PATH KEY [JSON] [extra curl args...]
  local m=$1 p=$2 k=$3 body=${4:-}; shift 4 || shift $#
  curl -sS -X "$m" "$API$p" -H "Authorization: Bearer $k" \
       ${body:+-H 'Content-Type: application/json' -d "$body"} "$@"
}

say "1. The web form creates an ASLM lead (admin key); it is assigned to the Rome dealer"
LEAD=$(call POST /v1/records aslm-admin \
  '{"workflow":"aslm","fields":{"first_name":"Mario","last_name":"Rossi","province":"RM","phone":"+39 06 1234567","model":"Ghibli"}}' \
  -H 'Idempotency-Key: webform-0001')
echo "$LEAD" | jq '{id, state, assignee, revision}'
ID=$(echo "$LEAD" | jq -r .id)

say "The dealer's buttons (transitions it may fire now, with their inputs)"
call GET /v1/records/$ID/actions aslm-dealer-rm | jq -c '.[] | {transition, to, input: [.input[] | {name, required}]}'

say "2. The dealer logs a contact attempt (If-Match: the revision it saw)"
call POST /v1/records/$ID/transitions/log_contact_attempt aslm-dealer-rm '{}' -H 'If-Match: "1"' | jq '{state, revision, attempts: .fields.attempts}'

say "A stale If-Match is refused with 412 (current_revision tells the revision now)"
call POST /v1/records/$ID/transitions/log_contact_attempt aslm-dealer-rm '{}' -H 'If-Match: "1"' | jq .

say "3. Closing with sale needs a VIN (E_REQUIRED)"
call POST /v1/records/$ID/transitions/close_sale aslm-dealer-rm '{"input":{}}' | jq .

say "4. The dealer books an appointment in three days"
WHEN=$(date -u -d '+3 days' +%Y-%m-%dT10:00:00Z)
call POST /v1/records/$ID/transitions/make_appointment aslm-dealer-rm "{\"input\":{\"appointment_at\":\"$WHEN\"}}" | jq '{state, revision}'

say "5. Closed with sale"
call POST /v1/records/$ID/transitions/close_sale aslm-dealer-rm '{"input":{"vin":"ZAMGJ45A390012345"}}' | jq '{state, revision, closed_at: .fields.closed_at}'

say "The lead's history, and what the Milan dealer gets for it (404: not its record)"
call GET /v1/records/$ID/history aslm-dealer-rm | jq -c '.[] | {transition, field, new}' | head -8
call GET /v1/records/$ID aslm-dealer-mi | jq .

say "6. Q.PARTNER: a lead from the PV simulator enters the Lazio pool"
QP=$(call POST /v1/records qp-admin \
  '{"workflow":"qpartner","fields":{"area":"IT-LAZIO","name":"Test1 ITroma","postal_code":"00185","city":"Roma","street":"Via Cialdini 14","email":"q@example.de","phone":"034114065515"}}')
QID=$(echo "$QP" | jq -r .id)
say "Installer inst-a lists its pool: contact details are redacted until it claims"
call GET "/v1/records?workflow=qpartner&state=available" qp-inst-a | jq -c '.items[] | {id, state, city: .fields.city, redacted}'
say "Installer inst-mi (Lombardy) sees nothing of it"
call GET "/v1/records?workflow=qpartner" qp-inst-mi | jq -c .
say "7. inst-a claims the lead: reserved for it, contact details revealed"
call POST /v1/records/$QID/transitions/claim qp-inst-a '{}' | jq '{state, assignee, phone: .fields.phone}'
say "inst-b can no longer see it"
call GET /v1/records/$QID qp-inst-b | jq .

STATE=$(call GET /v1/records/$ID aslm-admin | jq -r .state)
QSTATE=$(call GET /v1/records/$QID qp-admin | jq -r .state)
[ "$STATE" = closed_sale ] && [ "$QSTATE" = claimed ] || fail "$STATE $QSTATE (log: $LOG)"
say "Done: ASLM lead $ID is $STATE, Q.PARTNER lead $QID is $QSTATE (daemon log: $LOG)"
