#!/usr/bin/env bash
# `npm run bench:policies`: what each balancing method costs; `npm run bench:modes`
# (SET=modes): what the operations features cost (admin listener with metrics scraped,
# access log, limit_req and limit_conn) and what worker_processes 2 gives. Three nginx backends (like
# ../shared/bench/peers.sh), then for every method switchyard runs alone on CPU 0 with
# that method in its upstream, and wrk -t1 -c64 -d5s loads it from CPU 1. Rounds are
# interleaved (every method once per round). The table has each method's best round (other
# work on a shared machine only ever lowers a round, so the best is the least disturbed),
# its ratio to round robin's best, the median round, and every error wrk saw. Methods
# switchyard does not accept are listed as such. Everything started here is stopped by
# PID on exit, Ctrl-C or SIGTERM.
#
# Knobs (environment): ROUNDS=3 DURATION=5 WARMUP=2 CONNS=64 PROXY_CPU=0 LOAD_CPU=1
# BACKEND_PORTS="4000 4001 4002" PROXY_PORT=8080 RESULTS_DIR=(a new /tmp dir)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
read -ra BACKEND_PORTS <<<"${BACKEND_PORTS:-4000 4001 4002}"
PROXY_PORT=${PROXY_PORT:-8080}
WEIGHTS=(3 5 2)

SET=${SET:-policies}
# name | directive line written in the upstream (empty: the default round robin)
#      | lines added to http | worker_processes | extra command-line arguments
POLICIES=(
  "round_robin|"
  "least_conn|least_conn;"
  "fair|fair;"
  "random|random;"
  "random two|random two least_conn;"
  "least_time header|least_time header;"
  "least_time last_byte inflight|least_time last_byte inflight;"
  "sticky cookie|sticky cookie srv;"
  "ip_hash|ip_hash;"
  "hash \$request_uri|hash \$request_uri;"
  "hash consistent|hash \$request_uri consistent;"
)
if [[ $SET == modes ]]; then
  ADMIN_PORT=${ADMIN_PORT:-9190}
  # A limit_req and a limit_conn on every request, at rates wrk never reaches: the cost of
  # the checks themselves (with workers, of asking the primary over IPC).
  LIMITS="limit_req_zone \$binary_remote_addr zone=r:10m rate=1000000r/s; limit_conn_zone \$binary_remote_addr zone=c:10m; limit_req zone=r burst=1000000 nodelay; limit_conn c 60000;"
  POLICIES=(
    "one process, nothing else||||"
    "+ admin listener, metrics scraped|||1|--admin 127.0.0.1:$ADMIN_PORT"
    "+ access log (combined)||access_log \$RESULTS_DIR/access.log;|1|"
    "+ admin, metrics and access log||access_log \$RESULTS_DIR/access.log;|1|--admin 127.0.0.1:$ADMIN_PORT"
    "worker_processes 2|||2|"
    "+ limit_req and limit_conn (none refused)||$LIMITS|1|"
    "worker_processes 2 + limit_req and limit_conn||$LIMITS|2|"
  )
fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in nginx wrk node curl taskset setsid ss; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -f $SHARED/conf/backend-nginx.conf.in ]] || die "$SHARED/conf/backend-nginx.conf.in not found (set SHARED_BENCH)"
for port in "${BACKEND_PORTS[@]}" "$PROXY_PORT"; do
  [[ -z $(ss -Htln "sport = :$port") ]] || die "port $port is busy: $(ss -Htlnp "sport = :$port")"
done
[[ -f $ROOT/dist/src/cli/main.js ]] || (cd "$ROOT" && npx tsc -p .)

RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench-policies.XXXXXX")}
mkdir -p "$RESULTS_DIR"

# Process groups still running (each started with setsid, so its id is its group's).
STARTED=()
stop_group() {
  local pg=$1 i
  kill -TERM -- "-$pg" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
  local keep=() p
  for p in "${STARTED[@]}"; do [[ $p == "$pg" ]] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}
cleanup() {
  local pg
  for pg in "${STARTED[@]}"; do stop_group "$pg"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local i
  for ((i = 0; i < 150; i++)); do
    port_open "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- backends: one nginx worker on CPU 1 answering 41 bytes of JSON on each port -------
servers=""
for port in "${BACKEND_PORTS[@]}"; do
  servers+="    server { listen 127.0.0.1:$port; return 200 '{\"ok\":true,\"upstream\":$port,\"msg\":\"hello\"}'; }"$'\n'
done
template=$(<"$SHARED/conf/backend-nginx.conf.in")
template=${template//@RUN@/$RESULTS_DIR}
printf '%s\n' "${template//@SERVERS@/$servers}" >"$RESULTS_DIR/backend-nginx.conf"
setsid taskset -c "$LOAD_CPU" nginx -e "$RESULTS_DIR/backend-nginx-error.log" -c "$RESULTS_DIR/backend-nginx.conf" \
  >"$RESULTS_DIR/backends.log" 2>&1 </dev/null &
STARTED+=("$!")
for port in "${BACKEND_PORTS[@]}"; do wait_port "$port" "$!" || die "backends did not start: $(tail -5 "$RESULTS_DIR/backends.log")"; done

# ---- one measured run -------------------------------------------------------------------
config_for() {
  local line=$1 http_extra=${2:-} workers=${3:-1} i out
  out="worker_processes ${workers:-1};
events { worker_connections 8192; }
http {
  # As the peer harness tunes nginx: no keep-alive connection recycled after N requests.
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  $http_extra
  upstream servers_list {
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    $line"
  for i in "${!BACKEND_PORTS[@]}"; do
    out+="
    server 127.0.0.1:${BACKEND_PORTS[i]} weight=${WEIGHTS[i]};"
  done
  out+="
    keepalive $CONNS;
  }
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / { proxy_pass http://servers_list; }
  }
}"
  printf '%s\n' "$out"
}

# cpu_ticks PGID: user+system CPU ticks of every process in the group (a primary and its
# workers too). CPU per request is steadier than req/s on a shared machine: another
# process taking the core lowers a run's req/s but not the CPU each request costs.
cpu_ticks() {
  local total=0 f fields
  for f in /proc/[0-9]*/stat; do
    read -ra fields <"$f" 2>/dev/null || continue
    # After "pid (comm)": field 5 is the process group, 14 and 15 utime and stime
    # (comm has no spaces for node).
    [[ ${fields[4]} == "$1" ]] && total=$((total + fields[13] + fields[14]))
  done
  echo "$total"
}

# run_wrk SECONDS OUTFILE: wrk from the load CPU, in its own group so a Ctrl-C stops it.
run_wrk() {
  local pid rc=0
  setsid timeout $(($1 + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$1s" "http://127.0.0.1:$PROXY_PORT/" >"$2" 2>&1 </dev/null &
  pid=$!
  STARTED+=("$pid")
  wait "$pid" || rc=$?
  stop_group "$pid"
  return "$rc"
}

# measure ROUND INDEX: sets RESULT to "req/s errors cpu-µs-per-request", or to
# "unsupported" / "failed".
# (Not a $(subshell): the proxy it starts must be in this shell's STARTED for cleanup.)
measure() {
  local round=$1 index=$2 name line http_extra workers args conf out pid rc=0 scraper=
  IFS='|' read -r name line http_extra workers args <<<"${POLICIES[$2]}"
  http_extra=${http_extra//\$RESULTS_DIR/$RESULTS_DIR}
  conf="$RESULTS_DIR/policy-$index.conf"
  config_for "$line" "$http_extra" "$workers" >"$conf"
  if ! node "$ROOT/bin/switchyard.js" -t -c "$conf" >"$RESULTS_DIR/policy-$index.t.log" 2>&1; then
    RESULT=unsupported
    return
  fi
  # shellcheck disable=SC2086 # $args is a list of words
  setsid taskset -c "$PROXY_CPU" node "$ROOT/bin/switchyard.js" -c "$conf" $args >"$RESULTS_DIR/r$round-policy-$index.log" 2>&1 </dev/null &
  pid=$!
  STARTED+=("$pid")
  if ! wait_port "$PROXY_PORT" "$pid" || [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PROXY_PORT/") != 200 ]]; then
    stop_group "$pid"
    RESULT=failed
    return
  fi
  out="$RESULTS_DIR/r$round-policy-$index.wrk.txt"
  run_wrk "$WARMUP" "$out.warmup" || true
  if [[ $args == *--admin* ]]; then
    # Scrape /metrics and the API once a second while measuring, as Prometheus would.
    setsid taskset -c "$LOAD_CPU" bash -c "for i in \$(seq $((DURATION + 2))); do curl -s -o /dev/null --max-time 1 http://127.0.0.1:$ADMIN_PORT/metrics; curl -s -o /dev/null --max-time 1 http://127.0.0.1:$ADMIN_PORT/api/upstreams; sleep 1; done" </dev/null >/dev/null 2>&1 &
    scraper=$!
    STARTED+=("$scraper")
  fi
  local ticks
  ticks=$(cpu_ticks "$pid")
  run_wrk "$DURATION" "$out" || rc=$?
  ticks=$(($(cpu_ticks "$pid") - ticks))
  [[ -z $scraper ]] || stop_group "$scraper"
  kill -0 "$pid" 2>/dev/null || rc=1
  stop_group "$pid"
  if [[ $rc != 0 ]]; then
    RESULT=failed
    return
  fi
  RESULT=$(awk -v ticks="$ticks" -v hz="$(getconf CLK_TCK)" '/Requests\/sec/ { rps = $2 }
       / requests in / { n = $1 }
       /Non-2xx or 3xx responses/ { errors += $NF }
       /Socket errors/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
       END { printf "%.0f %d %.2f\n", rps, errors, (n > 0 ? ticks * 1e6 / hz / n : 0) }' "$out")
}

log "results in $RESULTS_DIR: ${#POLICIES[@]} methods x $ROUNDS rounds (wrk -t1 -c$CONNS -d${DURATION}s, switchyard on CPU $PROXY_CPU, wrk and backends on CPU $LOAD_CPU)"
declare -A RPS ERRORS CPU STATUS
RESULT=
for ((round = 1; round <= ROUNDS; round++)); do
  for index in "${!POLICIES[@]}"; do
    measure "$round" "$index"
    result=$RESULT
    name=${POLICIES[$index]%%|*}
    case $result in
      unsupported | failed) STATUS[$index]=$result ;;
      *)
        read -r rps errors cpu <<<"$result"
        RPS[$index]+="$rps "
        CPU[$index]+="$cpu "
        ERRORS[$index]=$(( ${ERRORS[$index]:-0} + errors ))
        ;;
    esac
    log "round $round/$ROUNDS  $(printf '%-30s' "$name") $result"
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | tail -1; }
least() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | head -1; }

log "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
baseline=$(best "${RPS[0]:-}")
cpu_baseline=$(least "${CPU[0]:-}")
# CPU µs/req: user+system time of switchyard's processes (all workers) per request, the
# least of the rounds; its ratio to the first row is the cost of what the row adds.
printf '| %s | req/s (best of %d) | × first row | median req/s | CPU µs/req | CPU × first row | errors |\n|---|---:|---:|---:|---:|---:|---:|\n' "$([[ $SET == modes ]] && echo mode || echo policy)" "$ROUNDS"
for index in "${!POLICIES[@]}"; do
  name=${POLICIES[$index]%%|*}
  if [[ -z ${RPS[$index]:-} ]]; then
    printf '| %s | %s | | | | | |\n' "$name" "${STATUS[$index]:-failed}"
    continue
  fi
  rps=$(best "${RPS[$index]}")
  ratio=$(awk -v a="$rps" -v b="$baseline" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
  cpu=$(least "${CPU[$index]}")
  cpu_ratio=$(awk -v a="$cpu" -v b="$cpu_baseline" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$ratio" "$(median "${RPS[$index]}")" "$cpu" "$cpu_ratio" "${ERRORS[$index]}"
done
