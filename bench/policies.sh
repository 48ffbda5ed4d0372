#!/usr/bin/env bash
# `npm run bench:policies`: what each balancing method costs; `npm run bench:modes`
# (SET=modes): what the operations features cost (admin listener with metrics scraped,
# access log, limit_req and limit_conn) and what worker_processes 2 gives. Three nginx
# backends (like ../shared/bench/peers.sh), then for every row switchyard runs on CPU 0
# with that row's config, and wrk -t1 -c64 -d5s loads it from CPU 1. Rounds are
# interleaved (every row once per round). The table has each row's best round (other
# work on a shared machine only ever lowers a round, so the best is the least disturbed),
# its ratio to the first row's best, the median round, and every error wrk saw. Rows
# switchyard does not accept are listed as such. Everything started here is stopped by
# PID on exit, Ctrl-C or SIGTERM.
#
# PAIRED=1 (the default for bench:modes): each row runs at the same time as a twin with
# the first row's config, both on CPU 0, each loaded by its own wrk with half the
# connections. Both see the same machine at the same moment, so a busy neighbour or a
# slower stretch of the VM cancels out of their ratio; the table adds the median and the
# range of the per-round ratios, row/twin, of CPU time per request and of req/s. The
# first row against its own twin shows what the method cannot tell apart.
#
# Knobs (environment): ROUNDS=3 (8 when paired) DURATION=5 WARMUP=2 CONNS=64 PROXY_CPU=0
# LOAD_CPU=1 BACKEND_PORTS="4000 4001 4002" PROXY_PORT=8080 (the twin: +1) PAIRED
# ROWS="0 3" (which rows to run, by index; default all) SCRAPE=1 (0: the admin listener
# is there but nothing asks it) SCRAPE_PATHS="/metrics /api/upstreams" (each asked once a
# second) RESULTS_DIR=(a new /tmp dir)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
SET=${SET:-policies}
PAIRED=${PAIRED:-$([[ $SET == modes ]] && echo 1 || echo 0)}
ROUNDS=${ROUNDS:-$([[ $PAIRED == 1 ]] && echo 8 || echo 3)}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
read -ra BACKEND_PORTS <<<"${BACKEND_PORTS:-4000 4001 4002}"
PROXY_PORT=${PROXY_PORT:-8080}
TWIN_PORT=$((PROXY_PORT + 1))
WEIGHTS=(3 5 2)

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

read -ra ROWS <<<"${ROWS:-${!POLICIES[*]}}"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in nginx wrk node curl taskset setsid ss; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -f $SHARED/conf/backend-nginx.conf.in ]] || die "$SHARED/conf/backend-nginx.conf.in not found (set SHARED_BENCH)"
for port in "${BACKEND_PORTS[@]}" "$PROXY_PORT" "$TWIN_PORT"; do
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
  local line=$1 http_extra=${2:-} workers=${3:-1} listen=${4:-$PROXY_PORT} i out
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
    listen 127.0.0.1:$listen;
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
    read -ra fields 2>/dev/null <"$f" || continue
    # After "pid (comm)": field 5 is the process group, 14 and 15 utime and stime
    # (comm has no spaces for node).
    [[ ${fields[4]} == "$1" ]] && total=$((total + fields[13] + fields[14]))
  done
  echo "$total"
}

# run_wrk SECONDS OUTFILE [TWIN-OUTFILE]: wrk from the load CPU, in its own group so a
# Ctrl-C stops it; with a twin, a second wrk loads the twin at the same time and each
# gets half the connections.
run_wrk() {
  local pids=() pid rc=0 conns=$CONNS
  [[ -z ${3:-} ]] || conns=$((CONNS / 2))
  setsid timeout $(($1 + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$1s" "http://127.0.0.1:$PROXY_PORT/" >"$2" 2>&1 </dev/null &
  pids+=("$!")
  if [[ -n ${3:-} ]]; then
    setsid timeout $(($1 + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$1s" "http://127.0.0.1:$TWIN_PORT/" >"$3" 2>&1 </dev/null &
    pids+=("$!")
  fi
  STARTED+=("${pids[@]}")
  for pid in "${pids[@]}"; do
    wait "$pid" || rc=$?
    stop_group "$pid"
  done
  return "$rc"
}

# start_proxy CONF PORT LOG ARGS…: switchyard on the proxy CPU; sets PROXY_PID, or returns
# non-zero when it does not answer.
start_proxy() {
  local conf=$1 port=$2 log=$3
  shift 3
  setsid taskset -c "$PROXY_CPU" node "$ROOT/bin/switchyard.js" -c "$conf" "$@" >"$log" 2>&1 </dev/null &
  PROXY_PID=$!
  STARTED+=("$PROXY_PID")
  if ! wait_port "$port" "$PROXY_PID" || [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/") != 200 ]]; then
    stop_group "$PROXY_PID"
    return 1
  fi
}

# wrk_result WRK-OUTPUT TICKS: "req/s errors cpu-µs-per-request".
wrk_result() {
  awk -v ticks="$2" -v hz="$(getconf CLK_TCK)" '/Requests\/sec/ { rps = $2 }
       / requests in / { n = $1 }
       /Non-2xx or 3xx responses/ { errors += $NF }
       /Socket errors/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
       END { printf "%.0f %d %.2f\n", rps, errors, (n > 0 ? ticks * 1e6 / hz / n : 0) }' "$1"
}

# measure ROUND INDEX: sets RESULT to "req/s errors cpu-µs-per-request", with the twin's
# "req/s cpu-µs-per-request" after it when paired (errors are both's), or to
# "unsupported" / "failed".
# (Not a $(subshell): the proxies it starts must be in this shell's STARTED for cleanup.)
measure() {
  local round=$1 index=$2 name line http_extra workers args conf out pid twin= rc=0 scraper=
  IFS='|' read -r name line http_extra workers args <<<"${POLICIES[$2]}"
  http_extra=${http_extra//\$RESULTS_DIR/$RESULTS_DIR}
  conf="$RESULTS_DIR/policy-$index.conf"
  config_for "$line" "$http_extra" "$workers" >"$conf"
  if ! node "$ROOT/bin/switchyard.js" -t -c "$conf" >"$RESULTS_DIR/policy-$index.t.log" 2>&1; then
    RESULT=unsupported
    return
  fi
  # shellcheck disable=SC2086 # $args is a list of words
  if ! start_proxy "$conf" "$PROXY_PORT" "$RESULTS_DIR/r$round-policy-$index.log" $args; then
    RESULT=failed
    return
  fi
  pid=$PROXY_PID
  if [[ $PAIRED == 1 ]]; then
    local twin_line twin_extra twin_workers
    IFS='|' read -r _ twin_line twin_extra twin_workers _ <<<"${POLICIES[0]}"
    config_for "$twin_line" "${twin_extra//\$RESULTS_DIR/$RESULTS_DIR}" "$twin_workers" "$TWIN_PORT" >"$RESULTS_DIR/twin.conf"
    if ! start_proxy "$RESULTS_DIR/twin.conf" "$TWIN_PORT" "$RESULTS_DIR/r$round-twin-$index.log"; then
      stop_group "$pid"
      RESULT=failed
      return
    fi
    twin=$PROXY_PID
  fi
  out="$RESULTS_DIR/r$round-policy-$index.wrk.txt"
  run_wrk "$WARMUP" "$out.warmup" ${twin:+"$out.twin.warmup"} || true
  if [[ $args == *--admin* && ${SCRAPE:-1} == 1 ]]; then
    # Scrape /metrics and the API once a second while measuring, as Prometheus would: one
    # curl process on a kept-alive connection (a new process per scrape would also take
    # the load core from wrk).
    local urls=() i path paths
    read -ra paths <<<"${SCRAPE_PATHS:-/metrics /api/upstreams}"
    for ((i = 0; i < DURATION + 2; i++)); do
      for path in "${paths[@]}"; do urls+=(-o /dev/null "http://127.0.0.1:$ADMIN_PORT$path"); done
    done
    setsid taskset -c "$LOAD_CPU" curl -s --max-time $((DURATION + 10)) --rate "${#paths[@]}/s" "${urls[@]}" </dev/null >/dev/null 2>&1 &
    scraper=$!
    STARTED+=("$scraper")
  fi
  local ticks twin_ticks=0
  ticks=$(cpu_ticks "$pid")
  [[ -z $twin ]] || twin_ticks=$(cpu_ticks "$twin")
  run_wrk "$DURATION" "$out" ${twin:+"$out.twin"} || rc=$?
  ticks=$(($(cpu_ticks "$pid") - ticks))
  [[ -z $twin ]] || twin_ticks=$(($(cpu_ticks "$twin") - twin_ticks))
  [[ -z $scraper ]] || stop_group "$scraper"
  kill -0 "$pid" 2>/dev/null || rc=1
  [[ -z $twin ]] || kill -0 "$twin" 2>/dev/null || rc=1
  stop_group "$pid"
  [[ -z $twin ]] || stop_group "$twin"
  if [[ $rc != 0 ]]; then
    RESULT=failed
    return
  fi
  local rps errors cpu twin_rps twin_errors twin_cpu
  read -r rps errors cpu <<<"$(wrk_result "$out" "$ticks")"
  RESULT="$rps $errors $cpu"
  if [[ -n $twin ]]; then
    read -r twin_rps twin_errors twin_cpu <<<"$(wrk_result "$out.twin" "$twin_ticks")"
    RESULT="$rps $((errors + twin_errors)) $cpu $twin_rps $twin_cpu"
  fi
}

log "results in $RESULTS_DIR: ${#ROWS[@]} rows x $ROUNDS rounds (wrk -t1 -c$CONNS -d${DURATION}s, switchyard on CPU $PROXY_CPU, wrk and backends on CPU $LOAD_CPU)"
declare -A RPS ERRORS CPU STATUS CPU_RATIO RPS_RATIO
RESULT=
for ((round = 1; round <= ROUNDS; round++)); do
  for index in "${ROWS[@]}"; do
    measure "$round" "$index"
    result=$RESULT
    name=${POLICIES[$index]%%|*}
    case $result in
      unsupported | failed) STATUS[$index]=$result ;;
      *)
        read -r rps errors cpu twin_rps twin_cpu <<<"$result"
        RPS[$index]+="$rps "
        CPU[$index]+="$cpu "
        if [[ $PAIRED == 1 ]]; then
          CPU_RATIO[$index]+="$(awk -v a="$cpu" -v b="$twin_cpu" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }') "
          RPS_RATIO[$index]+="$(awk -v a="$rps" -v b="$twin_rps" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }') "
        fi
        ERRORS[$index]=$(( ${ERRORS[$index]:-0} + errors ))
        ;;
    esac
    log "round $round/$ROUNDS  $(printf '%-30s' "$name") $result"
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | tail -1; }
least() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | head -1; }
most() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | tail -1; }
fixed() { awk -v x="$1" -v d="${2:-3}" 'BEGIN { printf "%.*f", d, x }'; }

log "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
kind=$([[ $SET == modes ]] && echo mode || echo policy)
if [[ $PAIRED == 1 ]]; then
  # Each round's ratio is row/twin measured at the same moment; the median of the rounds
  # and their range. CPU × twin above 1 is what the row costs on top of the first row.
  printf '| %s | CPU µs/req (median) | CPU × twin (median of %d) | range | req/s × twin (median) | range | errors |\n|---|---:|---:|---:|---:|---:|---:|\n' "$kind" "$ROUNDS"
  for index in "${ROWS[@]}"; do
    name=${POLICIES[$index]%%|*}
    if [[ -z ${RPS[$index]:-} ]]; then
      printf '| %s | %s | | | | | |\n' "$name" "${STATUS[$index]:-failed}"
      continue
    fi
    printf '| %s | %s | %s | %s–%s | %s | %s–%s | %s |\n' "$name" "$(fixed "$(median "${CPU[$index]}")" 1)" \
      "$(fixed "$(median "${CPU_RATIO[$index]}")")" "$(fixed "$(least "${CPU_RATIO[$index]}")")" "$(fixed "$(most "${CPU_RATIO[$index]}")")" \
      "$(fixed "$(median "${RPS_RATIO[$index]}")")" "$(fixed "$(least "${RPS_RATIO[$index]}")")" "$(fixed "$(most "${RPS_RATIO[$index]}")")" "${ERRORS[$index]}"
  done
  exit 0
fi
baseline=$(best "${RPS[0]:-}")
cpu_baseline=$(least "${CPU[0]:-}")
# CPU µs/req: user+system time of switchyard's processes (all workers) per request, the
# least of the rounds; its ratio to the first row is the cost of what the row adds.
printf '| %s | req/s (best of %d) | × first row | median req/s | CPU µs/req | CPU × first row | errors |\n|---|---:|---:|---:|---:|---:|---:|\n' "$kind" "$ROUNDS"
for index in "${ROWS[@]}"; do
  name=${POLICIES[$index]%%|*}
  if [[ -z ${RPS[$index]:-} ]]; then
    printf '| %s | %s | | | | | |\n' "$name" "${STATUS[$index]:-failed}"
    continue
  fi
  rps=$(best "${RPS[$index]}")
  ratio=$(awk -v a="$rps" -v b="$baseline" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
  cpu=$(least "${CPU[$index]}")
  cpu_ratio=$(awk -v a="$cpu" -v b="$cpu_baseline" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$ratio" "$(fixed "$(median "${RPS[$index]}")" 0)" "$cpu" "$cpu_ratio" "${ERRORS[$index]}"
done
