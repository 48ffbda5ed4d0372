#!/usr/bin/env bash
# The CANDIDATE command of `npm run bench`: switchyard on the harness's config with the
# tuning the harness gives nginx ("never recycle a keep-alive connection after N
# requests"): keepalive_requests and keepalive_timeout raised on the client and the
# upstream side, where nginx's defaults (1000 requests) would otherwise apply.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
conf=$1
tuned="${conf%.conf}.switchyard.conf"
sed -e 's/^\(\s*\)http {$/\1http {\n\1    keepalive_requests 10000000;\n\1    keepalive_timeout 300s;/' \
    -e 's/^\(\s*\)upstream \([A-Za-z0-9_]*\) {$/\1upstream \2 {\n\1    keepalive_requests 10000000;\n\1    keepalive_timeout 300s;/' \
    "$conf" >"$tuned"
exec node "$root/bin/switchyard.js" -c "$tuned"
