#!/usr/bin/env bash
# Runs the team's XState v5 anchor bench ($XSTATE_BENCH; default: the shared
# bench folder beside this checkout) and leadflow's fire
# benchmark in the same session and prints the ratio. Needs node and npm.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${XSTATE_BENCH:-$here/../shared/bench/xstate/bench.mjs}
work=$(mktemp -d)
(cd "$work" && npm init -y >/dev/null && npm install xstate@5 >/dev/null 2>&1 && cp "$bench" . )
xs=$(cd "$work" && node bench.mjs 2>/dev/null)
echo "$xs"
lf=$(cd "$here" && cargo bench -q -p leadflow-engine --bench fire 2>/dev/null)
echo "$lf"
x=$(echo "$xs" | sed -n 's/^actor: \([0-9]*\).*/\1/p')
l=$(echo "$lf" | sed -n 's/^xstate-equivalent: \([0-9]*\).*/\1/p')
a=$(echo "$lf" | sed -n 's/^aslm (workflows\/aslm.toml): \([0-9]*\).*/\1/p')
echo "ratio xstate-equivalent / xstate actor: $(echo "scale=1; $l / $x" | bc)x"
echo "ratio full aslm workflow / xstate actor: $(echo "scale=1; $a / $x" | bc)x"
