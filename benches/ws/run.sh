#!/usr/bin/env bash
# The gateway at scale (issue 28), printed, nothing asserted: (1) idle memory per
# authenticated idle WebSocket on /ws/notifications at the largest count one process may hold
# here, and (2) one event fanned out to 10,000 clients (messages/s, delivery p99), each
# against a Node.js `ws` server doing the same (node/server.js), in the same run, with the
# same client (client.c); the fan-out also against a floor (floor.c: one C thread writing
# each socket in turn), what this machine allows. See bench.py for the method and README.md
# for the figures.
#
#   benches/ws/run.sh [path to a release sdsim binary]    # about 2-3 minutes
#
# Default binary: ${CARGO_TARGET_DIR:-<repo>/target}/release/sdsim (cargo build --release -p sdsim).
# Needs a C compiler (cc), Node.js >= 20 and npm (node/'s dependencies are installed with
# `npm ci` into benches/ws/node/node_modules when missing). Starts `sdsim up` on free loopback
# ports with a fresh database and its own Redis prefix (as benches/live does), the Node peer on
# another port subscribed to a channel under the same prefix, and removes all of it at the end.
# Tuning (environment): WS_IDLE (connections for the idle step; default the hard open-file
# limit, at most 20,000, less 2,000), WS_FANOUT (10000), WS_EVENTS (20 to each server),
# WS_GAP (0.5 s between two publishes), WS_QUIET (3 s), WS_CLIENT_PROCS (2), WS_SOURCES
# (8 loopback source addresses), WS_CONCURRENCY (256 connections opening at once),
# WS_QUIET_WAIT (30 s at most waiting for other work to calm before the fan-out), WS_FLOOR
# (0: no floor), WS_KEEP_LOG (copy sdsim's log there).
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"

here="$SDSIM_ROOT/benches/ws"
bin="${1:-${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/release/sdsim}"
[ -x "$bin" ] || die "no sdsim binary at $bin: build one with \`cargo build --release -p sdsim\` or pass its path"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

sdsim_services
command -v redis-cli >/dev/null || apt_install redis-tools
command -v cc >/dev/null || apt_install gcc libc6-dev
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || die "Node.js >= 20 needed (found $(node -v))"
venv="${SDSIM_LIVE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/live-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/benches/live/requirements.txt"
if [ ! -f "$here/node/node_modules/ws/package.json" ] \
    || [ "$here/node/package-lock.json" -nt "$here/node/node_modules/.package-lock.json" ]; then
    log "npm ci in benches/ws/node"
    (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# Every WebSocket is a file in the server and one in a client: lift the soft limit of open
# files to the hard one for this shell and all it starts (sdsim also does it itself).
hard="$(ulimit -Hn)"
ulimit -n "$hard" 2>/dev/null || true
if [ -z "${WS_IDLE:-}" ]; then
    cap="$hard"
    [ "$cap" = unlimited ] || [ "$cap" -gt 20000 ] && cap=20000
    export WS_IDLE=$((cap - 2000))
fi
[ "$WS_IDLE" -gt 0 ] || die "the open-file limit ($hard) leaves no room for connections"

work="$(mktemp -d /tmp/sdsim-ws-bench.XXXXXX)"
db="sdsim_ws_bench_$(date +%s)_$$"
prefix="ws-bench-$$-$(date +%s):"
pid=""
node_pid=""

stop_pid() { # pid
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null || true
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "${bench_pid:-}"
    stop_pid "$node_pid"
    stop_pid "${floor_pid:-}"
    stop_pid "$pid"
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
    if [ -f "$work/sdsim.log" ]; then
        local warn
        warn="$(sed 's/\x1b\[[0-9;]*m//g' "$work/sdsim.log" | grep -E ' (WARN|ERROR) ' || true)"
        log "sdsim's log: $(printf '%s' "$warn" | grep -c . || true) warnings and errors in all"
        [ -z "$warn" ] || printf '%s\n' "$warn" | sed -E 's/^[^ ]+ +//' | cut -c1-220 | sort | uniq -c | sort -rn | head -n 8 >&2 || true
        if [ -n "${WS_KEEP_LOG:-}" ]; then cp "$work/sdsim.log" "$WS_KEEP_LOG"; fi
    fi
    if [ "$rc" != 0 ]; then
        [ -f "$work/sdsim.log" ] && { log "the stack's last log lines:"; tail -n 40 "$work/sdsim.log" >&2 || true; }
        [ -f "$work/node.log" ] && { log "the Node peer's log:"; tail -n 20 "$work/node.log" >&2 || true; }
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT INT TERM

cc -O2 -Wall -o "$work/wsclient" "$here/client.c"
cc -O2 -Wall -o "$work/floor" "$here/floor.c"

free_ports 10 "$venv/bin/python"
stack_up "$bin" "$work" "$db" "$prefix" "$venv/bin/python"
log "open files: sdsim $(awk '/Max open files/ {print $4}' "/proc/$pid/limits"), this shell $(ulimit -n)"
sed 's/\x1b\[[0-9;]*m//g' "$work/sdsim.log" \
    | grep -o 'open files limit [0-9]*: room for about [0-9]* WebSocket and HTTP connections' \
    | head -n 1 | sed 's/^/[sdsim] sdsim says: /' >&2 || true

node_port="${ports[8]}"
node_channel="${prefix}peer:system:announcements"
WS_PEER_PORT="$node_port" WS_PEER_REDIS_URL="$REDIS_URL" WS_PEER_CHANNEL="$node_channel" \
    node "$here/node/server.js" >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
    grep -q '^ready' "$work/node.log" 2>/dev/null && break
    kill -0 "$node_pid" 2>/dev/null || die "the Node peer exited: $(cat "$work/node.log")"
    sleep 0.1
done
grep -q '^ready' "$work/node.log" || die "the Node peer did not become ready"
floor_pid=""
floor_port=""
floor_channel=""
hostport="${REDIS_URL#redis://}"
hostport="${hostport%%/*}"
redis_host="${hostport%:*}"
redis_port="${hostport##*:}"
[ "$redis_host" = localhost ] && redis_host=127.0.0.1
if [ "${WS_FLOOR:-1}" != 0 ] && [[ "$redis_host" =~ ^[0-9.]+$ ]] && [[ "$redis_port" =~ ^[0-9]+$ ]]; then
    floor_port="${ports[9]}"
    floor_channel="${prefix}floor:system:announcements"
    "$work/floor" "$floor_port" "$redis_host" "$redis_port" "$floor_channel" >"$work/floor.log" 2>&1 &
    floor_pid=$!
    for _ in $(seq 1 50); do
        grep -q '^ready' "$work/floor.log" 2>/dev/null && break
        kill -0 "$floor_pid" 2>/dev/null || die "the floor server exited: $(cat "$work/floor.log")"
        sleep 0.1
    done
    grep -q '^ready' "$work/floor.log" || die "the floor server did not become ready"
else
    log "no floor server (WS_FLOOR=0, or Redis not at a plain IPv4 address: $REDIS_URL)"
fi
log "Node peer (ws $(node -p 'require(process.argv[1]).version' "$here/node/node_modules/ws/package.json"), node $(node -v)) on 127.0.0.1:$node_port"

WS_BASE="$base" WS_SDSIM_PORT="${ports[0]}" WS_SDSIM_PID="$pid" \
WS_NODE_PORT="$node_port" WS_NODE_PID="$node_pid" WS_NODE_CHANNEL="$node_channel" \
WS_FLOOR_PORT="$floor_port" WS_FLOOR_PID="$floor_pid" WS_FLOOR_CHANNEL="$floor_channel" \
WS_REDIS_URL="$REDIS_URL" WS_PREFIX="$prefix" WS_CLIENT="$work/wsclient" \
WS_WORK="$work" WS_LOG="$work/sdsim.log" \
    "$venv/bin/python" "$here/bench.py" &
bench_pid=$!
wait "$bench_pid"
