#!/usr/bin/env bash
# What an open dashboard costs the proxy: one switchyard (one process, pinned to CPU 0,
# admin listener on) measured with wrk in interleaved rounds, with no dashboard client
# and with the live stream connected (`/api/stream`, the dashboard's only poll), and
# optionally with the page open in headless chromium. Backends: one nginx worker on three
# ports (41-byte JSON), pinned with wrk to CPU 1, as in the shared peers.sh.
#
#   bash bench/dashboard.sh                 # 5 rounds x (none, stream), 6 s each
#   ROUNDS=3 MODES="none stream browser" bash bench/dashboard.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
MODES=${MODES:-"none stream"}
BASE=${BASE:-14100}                 # backends BASE..BASE+2, switchyard BASE+80, admin BASE+90
PROXY_CPUS=${PROXY_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

run=$(mktemp -d /tmp/switchyard-dashboard-bench.XXXXXX)
chmod 755 "$run"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$run/nginx.pid" ] && kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT INT TERM

listen=$((BASE + 80))
admin=$((BASE + 90))
mkdir -p "$run/www"
printf '{"ok":true,"upstream":4000,"msg":"hello"}' > "$run/www/index.json"
{
  echo "worker_processes 1; daemon off; pid $run/nginx.pid; error_log $run/nginx-error.log warn;"
  echo "events { worker_connections 16384; }"
  echo "http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s; default_type application/json;"
  echo "  client_body_temp_path $run/b; proxy_temp_path $run/p; fastcgi_temp_path $run/f; uwsgi_temp_path $run/u; scgi_temp_path $run/s;"
  for i in 0 1 2; do echo "  server { listen 127.0.0.1:$((BASE + i)); location / { root $run/www; try_files /index.json =404; } }"; done
  echo "}"
} > "$run/backends.conf"
cat > "$run/switchyard.conf" <<EOF
events { worker_connections 8192; }
http {
    upstream servers_list {
        server 127.0.0.1:$BASE weight=3;
        server 127.0.0.1:$((BASE + 1)) weight=5;
        server 127.0.0.1:$((BASE + 2)) weight=2;
    }
    server { listen 127.0.0.1:$listen; location / { proxy_pass http://servers_list; } }
}
EOF

wait_port() { for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$1/${2:-}" 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }

taskset -c "$LOAD_CPUS" nginx -c "$run/backends.conf" -e "$run/nginx-error.log" & pids+=($!)
wait_port "$BASE"
[ -f "$root/dist/dashboard/index.html" ] || (cd "$root" && npm run build >/dev/null)
taskset -c "$PROXY_CPUS" node "$root/bin/switchyard.js" -c "$run/switchyard.conf" --admin "127.0.0.1:$admin" 2> "$run/switchyard.log" & pids+=($!)
wait_port "$listen"
wait_port "$admin" "api/upstreams"

# Start the dashboard client for a mode; prints its pid (none: nothing).
client() {
  case $1 in
    none) ;;
    stream) taskset -c "$LOAD_CPUS" curl -sN "http://127.0.0.1:$admin/api/stream" > /dev/null & echo $! ;;
    browser)
      taskset -c "$LOAD_CPUS" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$run/chromium-$RANDOM" "http://127.0.0.1:$admin/" > /dev/null 2>&1 & echo $! ;;
  esac
}

echo "| round | mode | req/s | p50 | p99 |"
echo "|---|---|---|---|---|"
declare -A results
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    cpid=$(client "$mode")
    [ -n "$cpid" ] && pids+=("$cpid") && sleep 2
    taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$listen/" > /dev/null
    out=$(taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$listen/")
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    echo "| $round | $mode | $rps | $p50 | $p99 |"
    results[$mode]+="$rps "
    if [ -n "$cpid" ]; then kill "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true; fi
  done
done
echo
for mode in $MODES; do
  median=$(tr ' ' '\n' <<<"${results[$mode]}" | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  echo "median $mode: $median req/s"
done
