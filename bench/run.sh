#!/usr/bin/env bash
# `npm run bench`: the shared peer harness with switchyard as the candidate (one
# process, one core), so its row is measured in the same run as nginx and the Node
# proxies. Extra arguments go to peers.sh (e.g. `npm run bench -- -r 3`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness=${PEERS_SH:-$root/../shared/bench/peers.sh}
[ -x "$harness" ] || [ -f "$harness" ] || { echo "bench: $harness not found (set PEERS_SH)" >&2; exit 1; }
[ -f "$root/dist/src/cli/main.js" ] || (cd "$root" && npx tsc -p .)
export CANDIDATE="bash $root/bench/candidate.sh {config}"
export CANDIDATE_NAME=switchyard
exec bash "$harness" "$@"
