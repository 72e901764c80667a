#!/bin/bash
# Where does a broker spend its time per request?  (docs/performance.md)
#
#   bench/profile_broker.sh [BROKER] [CLIENTS]
#
# Serves bench-client's open requests from the broker (default
# build/bin/open-hook-server) with the benchmark's policy and an audit file,
# then prints: syscalls per request (strace -c), the broker's CPU time per
# request next to the IPC floor's, and its hottest symbols (perf, cpu-clock:
# this VM has no hardware counters).  Server and client share one CPU as in
# the 1-client rows, unless CLIENTS > 1.  Scratch goes to build/bench/profile.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tools=$top/build/bench
broker=${1:-$top/build/bin/open-hook-server}
clients=${2:-1}
work=$tools/profile
ws=$tools/tiny              # made by run_bench.py --prepare-only
target=$ws/files/target.img
cpus=$(nproc)
server_cpu=$((cpus - 1))
client_cpu=$([ "$clients" -gt 1 ] && echo 0 || echo "$server_cpu")

mkdir -p "$work"
/usr/bin/python3 "$top/bench/run_bench.py" --bin "$top/build/bin" \
    --tools "$tools" --work "$tools" --size tiny --prepare-only

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

# start_server SOCKET COMMAND...: runs COMMAND on the server CPU.
start_server() {
    local sock=$1
    shift
    rm -f "$sock"
    taskset -c "$server_cpu" "$@" &
    server_pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && return; sleep 0.05; done
    echo "profile_broker: no socket at $sock" >&2
    exit 1
}

load() {
    taskset -c "$client_cpu" "$tools/bench-client" rtt --socket "$1" \
        --clients "$clients" --path "$target" --warmup 0 --seconds "$2"
}

requests_of() { sed -n 's/.*"requests": \([0-9]*\).*/\1/p'; }

cpu_ns() { cut -d' ' -f1 "/proc/$server_pid/schedstat"; }

broker_cmd=("$broker" --policy "$ws/policy.txt" --audit "$work/audit.jsonl"
            --listen "$work/broker.sock")

echo "== CPU time per request (server side), $clients client(s)"
for which in floor broker; do
    if [ "$which" = floor ]; then
        start_server "$work/floor.sock" "$tools/ipc-floor-server" --listen "$work/floor.sock"
        sock=$work/floor.sock
    else
        start_server "$work/broker.sock" "${broker_cmd[@]}"
        sock=$work/broker.sock
    fi
    before=$(cpu_ns)
    n=$(load "$sock" 2 | requests_of)
    after=$(cpu_ns)
    echo "$which: $n requests, $(( (after - before) / n )) ns CPU each"
    stop_server
done

echo "== syscalls per request (strace -c; strace slows everything down)"
rm -f "$work/broker.sock"
strace -f -c -o "$work/strace.txt" "${broker_cmd[@]}" &
strace_pid=$!
for _ in $(seq 100); do [ -S "$work/broker.sock" ] && break; sleep 0.05; done
n=$(load "$work/broker.sock" 1 | requests_of)
kill "$(pgrep -P "$strace_pid")" && wait "$strace_pid" || true
awk -v n="$n" 'NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ && $4 / n >= 0.01 {
        printf "  %-14s %6.2f per request\n", $NF, $4 / n }' "$work/strace.txt" |
    sort -k2 -rn

echo "== hottest symbols (perf record -e cpu-clock)"
start_server "$work/broker.sock" "${broker_cmd[@]}"
perf record -q -e cpu-clock -F 4000 -g -p "$server_pid" -o "$work/perf.data" \
    -- sleep 3 2>/dev/null &
perf_pid=$!
sleep 0.2
load "$work/broker.sock" 2.5 >/dev/null
wait "$perf_pid" || true
stop_server
# The share of finish_task_switch is time spent switching to and from the
# client: on a VM it is large, and the IPC floor pays it too.
perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && shown++ < 30' 
