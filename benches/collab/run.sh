#!/usr/bin/env bash
# Live collaboration's figures (docs/collaboration.md), printed, nothing asserted: the time from
# one collaborator's edit to its `collaboration.edit` frame at every other collaborator, and to
# its own `collaboration.ack` (committed to PostgreSQL), with 2, 20 and 100 collaborators of one
# project connected alternately to two gateway instances, against Redis's own XADD -> XREAD
# floor for the same payload and as many readers, measured in the same run. See bench.py for
# the method.
#
#   benches/collab/run.sh [path to a release sdsim binary]
#
# Default binary: ${CARGO_TARGET_DIR:-<repo>/target}/release/sdsim (cargo build --release -p sdsim).
# Starts `sdsim up` (every service, gateway 1 among them) and a second `sdsim serve gateway` on
# free loopback ports, with a fresh database and their own Redis prefix (as benches/live does),
# and removes both, the database and the prefix's keys at the end. Tuning (environment):
# COLLAB_CLIENTS (2,20,100 collaborators), COLLAB_RATE (50 edits/s in all), COLLAB_EDITORS
# (10: at most this many of the collaborators send the edits, in turn), COLLAB_SECONDS (15
# measured per step), COLLAB_JOIN_PARALLEL (8 collaborators joining at a time),
# COLLAB_KEEP_LOG (copy the two logs there, as <path>.up and <path>.gateway2),
# COLLAB_QUIET_WAIT (30: seconds to wait before each step for other work on the machine to
# calm), COLLAB_BUSY (0.25) and COLLAB_RETRIES (2): a measurement during which other work used
# more than COLLAB_BUSY of a core is taken again, after waiting for calm, up to COLLAB_RETRIES
# times.
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"

bin="${1:-${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/release/sdsim}"
[ -x "$bin" ] || die "no sdsim binary at $bin: build one with \`cargo build --release -p sdsim\` or pass its path"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

sdsim_services
command -v redis-cli >/dev/null || apt_install redis-tools
# The same packages as the live bench (websockets, redis): its virtual environment.
venv="${SDSIM_LIVE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/live-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/benches/live/requirements.txt"

# 100 collaborators are 100 sockets here, 100 in the gateways and as many Redis readers for
# the floor: lift the soft limit of open files to the hard one, as benches/live does.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work="$(mktemp -d /tmp/sdsim-collab-bench.XXXXXX)"
db="sdsim_collab_bench_$(date +%s)_$$"
prefix="collab-bench-$$-$(date +%s):"
pid=""
pid2=""

stop() { # pid: TERM, up to 10 s, then KILL
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

log_summary() { # log file, name
    [ -f "$1" ] || return 0
    local warn
    warn="$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E ' (WARN|ERROR) ' || true)"
    log "$2's log: $(printf '%s' "$warn" | grep -c . || true) warnings and errors"
    [ -n "$warn" ] || return 0
    printf '%s\n' "$warn" | sed -E 's/^[^ ]+ +//' | cut -c1-220 | sort | uniq -c | sort -rn | head -n 8 >&2 || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${bench_pid:-}" ] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    # The second gateway first: it needs the services of `sdsim up` to close cleanly.
    stop "$pid2"
    stop "$pid"
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
    log_summary "$work/sdsim.log" "sdsim up"
    log_summary "$work/gateway2.log" "gateway 2"
    if [ -n "${COLLAB_KEEP_LOG:-}" ]; then
        cp "$work/sdsim.log" "$COLLAB_KEEP_LOG.up" 2>/dev/null || true
        cp "$work/gateway2.log" "$COLLAB_KEEP_LOG.gateway2" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ]; then
        local f
        for f in sdsim.log gateway2.log; do
            [ -f "$work/$f" ] || continue
            log "$f, last lines:"; tail -n 30 "$work/$f" >&2 || true
        done
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# ports[0..7]: `sdsim up` (stack_up); ports[8], ports[9]: gateway 2's HTTP and gRPC.
free_ports 10 "$venv/bin/python"
stack_up "$bin" "$work" "$db" "$prefix" "$venv/bin/python"

# Gateway 2: the same settings (database, Redis prefix, JWT secret, the backends' addresses,
# which `sdsim up` listens on), its own listeners. It finds the backends at those addresses
# and in discovery, as deploy/cluster.sh's gateways do.
log "sdsim serve gateway on 127.0.0.1:${ports[8]} (gateway 2)"
SDSIM_GATEWAY__LISTEN__HTTP="127.0.0.1:${ports[8]}" SDSIM_GATEWAY__LISTEN__GRPC="127.0.0.1:${ports[9]}" \
SDSIM_DATABASE__MIGRATE_ON_START=false \
    "$bin" serve gateway >"$work/gateway2.log" 2>&1 &
pid2=$!
base2="http://127.0.0.1:${ports[8]}"
for i in $(seq 1 301); do
    [ "$i" = 301 ] && die "gateway 2 did not become ready"
    kill -0 "$pid2" 2>/dev/null || die "gateway 2 exited early"
    "$venv/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "$base2/readyz" 2>/dev/null && break
    sleep 0.2
done

COLLAB_BASES="$base,$base2" COLLAB_REDIS_URL="$REDIS_URL" COLLAB_PREFIX="$prefix" \
COLLAB_PIDS="$pid,$pid2" COLLAB_LOGS="$work/sdsim.log,$work/gateway2.log" \
    "$venv/bin/python" "$SDSIM_ROOT/benches/collab/bench.py" &
bench_pid=$!
wait "$bench_pid"
