#!/usr/bin/env bash
# Live runs' figures (issue 21), printed, nothing asserted: (1) XADD -> WebSocket watcher
# latency with 1, 100 and 1,000 watchers of one run, against Redis's own XADD -> XREAD floor
# measured meanwhile; (2) how many real-time runs (10 windows/s each) one instance carries,
# and the windows/s streamed end to end. See bench.py for the method.
#
#   benches/live/run.sh [path to a release sdsim binary]
#
# Default binary: ${CARGO_TARGET_DIR:-<repo>/target}/release/sdsim (cargo build --release -p sdsim).
# Starts `sdsim up` on free loopback ports with a fresh database and its own Redis prefix (as
# console/tests/stack.sh does), and removes the stack, the database and the prefix's keys at
# the end. Tuning (environment): LIVE_WATCHERS (1,100,1000), LIVE_PROCS (4 watcher
# processes), LIVE_SECONDS (15 per watcher count),
# LIVE_RUNS (10,50,100,125,150,200,300,400,600,800),
# LIVE_RUN_SECONDS (12 per K), LIVE_LAG_LIMIT (1.0 s), LIVE_DESIGN (a design JSON; default
# engine/templates/read_heavy_api_with_cache.json), LIVE_RATE (its clients' requests/s instead
# of the design's: the engine's cost per run), LIVE_KEEP_LOG (copy sdsim's log there),
# LIVE_QUIET_WAIT (30: seconds to wait before each step for other work on the machine to calm).
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"

bin="${1:-${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/release/sdsim}"
[ -x "$bin" ] || die "no sdsim binary at $bin: build one with \`cargo build --release -p sdsim\` or pass its path"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

sdsim_services
command -v redis-cli >/dev/null || apt_install redis-tools
venv="${SDSIM_LIVE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/live-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/benches/live/requirements.txt"

# 1,000 watchers are 1,000 sockets in the gateway (and as many here): lift the soft limit of
# open files to the hard one for this shell and what it starts (sdsim does not raise its own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] \
    || log "warning: only $(ulimit -n) open files allowed; 1,000 watchers may fail"

work="$(mktemp -d /tmp/sdsim-live-bench.XXXXXX)"
db="sdsim_live_bench_$(date +%s)_$$"
prefix="live-bench-$$-$(date +%s):"
pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${bench_pid:-}" ] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
    if [ -f "$work/sdsim.log" ]; then
        local warn
        warn="$(sed 's/\x1b\[[0-9;]*m//g' "$work/sdsim.log" | grep -E ' (WARN|ERROR) ' || true)"
        log "sdsim's log: $(printf '%s' "$warn" | grep -c . || true) warnings and errors"
        printf '%s\n' "$warn" | sed -E 's/^[^ ]+ +//' | cut -c1-220 | sort | uniq -c | sort -rn | head -n 8 >&2 || true
        if [ -n "${LIVE_KEEP_LOG:-}" ]; then cp "$work/sdsim.log" "$LIVE_KEEP_LOG"; fi
    fi
    if [ "$rc" != 0 ] && [ -f "$work/sdsim.log" ]; then
        log "the stack's last log lines:"; tail -n 40 "$work/sdsim.log" >&2 || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT INT TERM

free_ports 10 "$venv/bin/python"
# One user starts every run of step (2): lift its admission caps (10 runs a user and 64
# running an instance by default) above the largest K.
export SDSIM_SIMULATION__MAX_RUNS_PER_USER="${SDSIM_SIMULATION__MAX_RUNS_PER_USER:-2000}"
export SDSIM_SIMULATION__MAX_RUNNING="${SDSIM_SIMULATION__MAX_RUNNING:-2000}"
stack_up "$bin" "$work" "$db" "$prefix" "$venv/bin/python"
log "open files: sdsim $(awk '/Max open files/ {print $4}' "/proc/$pid/limits"), this shell $(ulimit -n)"

LIVE_BASE="$base" LIVE_REDIS_URL="$REDIS_URL" LIVE_PREFIX="$prefix" LIVE_SDSIM_PID="$pid" \
LIVE_WORK="$work" LIVE_LOG="$work/sdsim.log" \
LIVE_DESIGN="${LIVE_DESIGN:-$SDSIM_ROOT/engine/templates/read_heavy_api_with_cache.json}" \
    "$venv/bin/python" "$SDSIM_ROOT/benches/live/bench.py" &
bench_pid=$!
wait "$bench_pid"
